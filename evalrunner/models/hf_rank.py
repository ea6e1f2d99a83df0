"""Log-likelihoods of fixed candidate continuations, scored against each prompt's KV cache in batched passes.

OpenFlamingo runs the prompt once and then feeds each class name, token by token, class after class: for ImageNet
that is 1,000 sequential loops per image. Here the prompts of a batch run once, together. Every candidate's first
token is scored from the prompt's last logits. The rest are scored in chunks: one prompt's cache is repeated over
a chunk of candidates, which are padded to the same length and run in one forward pass.

The prompts are right-padded (a left-padded batch is turned around first). Each prompt's cache is cut to its own
tokens, so a candidate's positions continue
the prompt's by the model's own default (PaliGemma's 1-indexed ones included), and a candidate's padding, at its
end, is never attended to by its real tokens under the causal mask.
"""

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from evalrunner.errors import UserError


def _forward_params(model: Any) -> set[str]:
    return set(inspect.signature(model.forward).parameters)


def _cache_name(params: set[str]) -> str:
    return "cache" if "cache" in params else "past_key_values"  # transformers 5 renamed it


def _kv_layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    layers = getattr(cache, "layers", None)
    if layers is None:  # transformers < 4.56 keeps two lists
        return list(zip(cache.key_cache, cache.value_cache))
    kinds = {type(layer).__name__ for layer in layers}
    if kinds != {"DynamicLayer"}:
        raise UserError(f"model=hf: ranking needs a full-attention KV cache; this model's cache has {sorted(kinds)} "
                        "layers (sliding-window attention is not supported yet)")
    return [(layer.keys, layer.values) for layer in layers]


def _repeat_prompt_cache(layers: list[tuple[torch.Tensor, torch.Tensor]], row: int, length: int, copies: int) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache()
    for index, (keys, values) in enumerate(layers):
        # Fresh tensors per chunk: the forward pass appends the candidates' keys to them.
        cache.update(keys[row : row + 1, :, :length].expand(copies, -1, -1, -1).contiguous(),
                     values[row : row + 1, :, :length].expand(copies, -1, -1, -1).contiguous(), index)
    return cache


def right_padded(inputs: dict[str, Any]) -> dict[str, Any]:
    """The batch with each row's real tokens moved to its front, in order; every per-token tensor moves alike."""
    mask = inputs["attention_mask"]
    if not bool((mask[:, 1:] > mask[:, :-1]).any()):
        return inputs
    order = torch.sort(mask, dim=1, descending=True, stable=True).indices
    return {k: v.gather(1, order) if isinstance(v, torch.Tensor) and v.shape == mask.shape else v
            for k, v in inputs.items()}


def candidate_logprobs(model: Any, inputs: dict[str, Any], candidates: list[list[int]], chunk: int, pad_id: int,
                       context: int | None,
                       before_chunk: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Per-token mean log-likelihoods, (prompts, candidates), of token-id candidates after padded prompts.
    `before_chunk(row, copies)` lets a model whose forward holds per-row state (Flamingo's images) set it."""
    if any(not c for c in candidates):
        raise UserError("a ranking candidate tokenizes to no tokens; every candidate needs at least one")
    inputs = right_padded(inputs)
    mask = inputs["attention_mask"]
    lengths = mask.sum(dim=1)
    longest = max(len(c) for c in candidates)
    if context is not None and int(lengths.max()) + longest > context:
        raise UserError(f"a prompt of {int(lengths.max())} tokens and a candidate of {longest} exceed the context of "
                        f"{context} tokens; raise model.max_length or use fewer shots")
    params = _forward_params(model)
    cache_arg = _cache_name(params)
    last = lengths - 1
    kwargs: dict[str, Any] = {**inputs, "use_cache": True}
    keep = torch.unique(last)
    if "logits_to_keep" in params:
        kwargs["logits_to_keep"] = keep  # only the prompts' last positions: a full (B, L, vocab) tensor is huge
        out = model(**kwargs)
        logits = out.logits
    else:
        out = model(**kwargs)
        logits = out.logits[:, keep]
    rows = torch.arange(mask.shape[0], device=mask.device)
    first = logits[rows, torch.searchsorted(keep, last)].float().log_softmax(dim=-1)
    layers = _kv_layers(out.cache if cache_arg == "cache" else out.past_key_values)

    device = mask.device
    sizes = torch.tensor([len(c) for c in candidates], dtype=torch.float64)
    total = first[:, torch.tensor([c[0] for c in candidates], device=device)].double().cpu()
    # Sorted by length, so a chunk pads little; the ids break ties, so the chunks never depend on anything else.
    rest = sorted((j for j, c in enumerate(candidates) if len(c) > 1), key=lambda j: (len(candidates[j]), j))
    for row in range(mask.shape[0]):
        length = int(lengths[row])
        for start in range(0, len(rest), chunk):
            picked = rest[start : start + chunk]
            width = max(len(candidates[j]) for j in picked) - 1
            feed = torch.full((len(picked), width), pad_id, dtype=torch.long)
            target = torch.zeros((len(picked), width), dtype=torch.long)
            real = torch.zeros((len(picked), width), dtype=torch.bool)
            for r, j in enumerate(picked):
                c = candidates[j]
                feed[r, : len(c) - 1] = torch.tensor(c[:-1])
                target[r, : len(c) - 1] = torch.tensor(c[1:])
                real[r, : len(c) - 1] = True
            cache = _repeat_prompt_cache(layers, row, length, len(picked))
            if before_chunk is not None:
                before_chunk(row, len(picked))
            step = model(input_ids=feed.to(device), use_cache=True, **{cache_arg: cache})
            logprobs = step.logits.float().log_softmax(dim=-1)
            got = logprobs.gather(2, target.to(device)[..., None]).squeeze(-1).double().cpu()
            total[row, picked] += (got * real).sum(dim=1)
    return (total / sizes).numpy()
