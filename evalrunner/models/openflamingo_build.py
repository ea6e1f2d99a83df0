"""An OpenFlamingo model built from its parts with open_flamingo's own classes, and its checkpoint loaded strictly.

open_flamingo's factory is not used: it hard-codes trust_remote_code=True, guesses the decoder layers from the class
name, and its eval loads checkpoints with strict=False, so a checkpoint that fits the wrong LM runs and writes noise.
"""

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from evalrunner.errors import UserError

# OpenFlamingo's --precision: (weight dtype, autocast dtype or None)
PRECISIONS = {"fp32": (torch.float32, None), "bf16": (torch.bfloat16, None), "fp16": (torch.float16, None),
              "amp_bf16": (torch.float32, torch.bfloat16)}
# Where each LM family keeps its decoder blocks, by config.model_type; the checkpoint's keys follow these paths.
DECODER_LAYERS = {"llama": "model.layers", "opt": "model.decoder.layers", "gpt_neox": "gpt_neox.layers",
                  "gptj": "transformer.h", "mpt": "transformer.blocks", "mosaic_gpt": "transformer.blocks"}
SPECIAL_TOKENS = ["<|endofchunk|>", "<image>"]


@dataclass
class Built:
    model: Any  # open_flamingo.Flamingo
    image_processor: Callable[[Any], torch.Tensor]  # open_clip's eval transform: PIL image -> (C, H, W)
    tokenizer: Any
    dtype: torch.dtype
    autocast: torch.dtype | None


class TransformersFiveMixin(torch.nn.Module):
    """Goes before open_flamingo's FlamingoLMMixin. transformers 5's generate makes position ids from the attention
    mask only for a forward that names `position_ids`, and the mixin's `forward(input_ids, attention_mask, **kw)`
    doesn't: left-padded rows then start at the pad's positions and an item's output depends on its batch. Its
    attention_mask is also required, where a cached step (ranking) passes none."""

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, **kwargs: Any) -> Any:
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        return super().forward(input_ids, attention_mask, **kwargs)


def precision(name: str) -> tuple[torch.dtype, torch.dtype | None]:
    if name not in PRECISIONS:
        raise UserError(f"model.precision={name!r}: choose one of {', '.join(PRECISIONS)}")
    return PRECISIONS[name]


def open_clip_name(value: str, key: str) -> str:
    """An open_clip model name; a config JSON's path is registered under its file stem, as open_clip names them."""
    import open_clip

    if value.endswith(".json"):
        path = Path(os.path.expanduser(value))
        if not path.is_file():
            raise UserError(f"{key}={value}: no such open_clip model config file")
        open_clip.add_model_config(path)
        return path.stem
    if value not in open_clip.list_models():
        raise UserError(f"{key}={value!r}: not an open_clip model name (e.g. ViT-L-14) nor a config JSON path")
    return value


def build(cfg: DictConfig, device: torch.device) -> Built:
    try:
        import open_clip
        from open_flamingo.src.flamingo import Flamingo
        from open_flamingo.src.flamingo_lm import FlamingoLMMixin
        from open_flamingo.src.utils import extend_instance
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise UserError(f"model=openflamingo needs open_flamingo and open_clip ({e}): "
                        "bash scripts/install_openflamingo.sh") from None
    dtype, autocast = precision(str(cfg.precision))
    name = open_clip_name(str(cfg.vision_encoder), "model.vision_encoder")
    pretrained = None if cfg.vision_pretrained in (None, "null", "none") else str(cfg.vision_pretrained)
    try:
        clip, _, image_processor = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    except RuntimeError as e:
        raise UserError(f"model.vision_pretrained={pretrained!r}: {str(e).splitlines()[0]}") from None
    clip.visual.output_tokens = True  # Flamingo reads the patch tokens, not the pooled embedding
    remote = bool(cfg.trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(cfg.tokenizer_path), trust_remote_code=remote)
        lm = AutoModelForCausalLM.from_pretrained(str(cfg.lm_path), trust_remote_code=remote, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise UserError(f"model.lm_path={cfg.lm_path}: cannot load it ({str(e).strip().splitlines()[0]}); set "
                        "model.trust_remote_code=true only for a custom-code LM you trust") from None
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})  # as OpenFlamingo adds them
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": "<PAD>"})
    kind = lm.config.model_type
    if kind not in DECODER_LAYERS:
        raise UserError(f"model.lm_path={cfg.lm_path}: a {kind!r} LM; supported: {', '.join(sorted(DECODER_LAYERS))}")
    if not hasattr(lm, "get_input_embeddings") or lm.get_input_embeddings() is None:
        raise UserError(f"model.lm_path={cfg.lm_path}: the LM has no input embeddings to extend")
    extend_instance(lm, FlamingoLMMixin)
    extend_instance(lm, TransformersFiveMixin)
    lm.set_decoder_layers_attr_name(DECODER_LAYERS[kind])
    # Rows for the added tokens that a checkpoint leaves out (an untied output layer) are the same on every rank.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model = Flamingo(clip, lm, tokenizer.encode("<|endofchunk|>")[-1], tokenizer.encode("<image>")[-1],
                     vis_dim=open_clip.get_model_config(name)["vision_cfg"]["width"],
                     cross_attn_every_n_layers=int(cfg.cross_attn_every_n_layers))
    load_checkpoint(model, str(cfg.checkpoint))
    model.requires_grad_(False)
    model = model.to(device, dtype=dtype).eval()
    return Built(model, image_processor, tokenizer, dtype, autocast)


def _required(model: Any) -> dict[int, str]:
    """Tensors a checkpoint must hold: all but the frozen vision and language backbones (the added tokens' rows
    live in the input embeddings)."""
    parts = [model.perceiver, model.lang_encoder.gated_cross_attn_layers, model.lang_encoder.get_input_embeddings()]
    ids = {id(p) for part in parts for p in part.parameters()}
    return {id(p): name for name, p in model.named_parameters(remove_duplicate=False) if id(p) in ids}


def load_checkpoint(model: Any, path: str) -> None:
    """OpenFlamingo's checkpoint.pt, or a training checkpoint holding it under model_state_dict; a key the model lacks
    or a trained tensor the file lacks is an error naming it."""
    if not os.path.isfile(os.path.expanduser(path)):
        raise UserError(f"model.checkpoint={path}: no such file (the release's checkpoint.pt)")
    try:
        state = torch.load(os.path.expanduser(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"model.checkpoint={path}: not a readable torch checkpoint ({type(e).__name__})") from None
    if "model_state_dict" in state:
        state = {k.replace("module.", ""): v for k, v in state["model_state_dict"].items()}
    own = model.state_dict(keep_vars=True)
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise UserError(f"model.checkpoint={path}: {len(unexpected)} key(s) the model does not have, first "
                        f"{unexpected[0]!r}; is model.lm_path the LM this checkpoint was trained on?")
    given = {id(own[k]) for k in state}
    missing = [name for ident, name in _required(model).items() if ident not in given]
    if missing:
        raise UserError(f"model.checkpoint={path}: {len(missing)} trained tensor(s) missing, first {missing[0]!r}; "
                        "check model.cross_attn_every_n_layers and model.lm_path")
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        shape = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e))
        raise UserError(f"model.checkpoint={path}: {shape}") from None


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> Any:
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
