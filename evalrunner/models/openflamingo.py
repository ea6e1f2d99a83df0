"""OpenFlamingo checkpoints (`model=openflamingo`): prompts as OpenFlamingo's eval writes them, beam search through
`Flamingo.generate`, and ranking against each prompt's KV cache.

A prompt is `demo<|endofchunk|>` + separator per demo, then the query with its answer slot open; a demo shown as text
only (OpenFlamingo's zero-shot) loses its `<image>`. Images go in as (B, T_img, 1, C, H, W), zero-padded, the
text left-padded. open_flamingo is imported inside the class only: the registry imports this module regardless.
"""

import hashlib
from collections.abc import Sequence
from typing import Any

import torch
from omegaconf import DictConfig
from PIL import Image

from evalrunner.datasets.base import Item
from evalrunner.errors import UserError
from evalrunner.models import reuse
from evalrunner.models.base import LogLikelihoods
from evalrunner.models.hf_rank import candidate_logprobs
from evalrunner.registry import register

EOC = "<|endofchunk|>"
_BUILD_KEYS = ("vision_encoder", "vision_pretrained", "lm_path", "tokenizer_path", "cross_attn_every_n_layers",
               "checkpoint", "precision", "trust_remote_code")


@register("model", "openflamingo")
class OpenFlamingoModel:
    def __init__(self, cfg: DictConfig, dataset_cfg: DictConfig, device: torch.device) -> None:
        from evalrunner.models import openflamingo_build

        settings = {k: cfg[k] for k in _BUILD_KEYS}
        self.built = reuse.shared("openflamingo", settings, device, lambda: openflamingo_build.build(cfg, device))
        self.device = device
        self.tokenizer = self.built.tokenizer
        self.is_rank = dataset_cfg.task == "classification"
        # Ranking right-pads (hf_rank turns a left-padded batch around); generation continues every row at its end.
        self.tokenizer.padding_side = "left"
        self.prompt_cfg = dataset_cfg.prompt
        self.generation = None if self.is_rank else dataset_cfg.generation
        self.rank_chunk = int(cfg.get("rank_chunk") or 64)
        self.max_length = int(cfg.max_length)
        p = self.prompt_cfg
        self.prompt_hash = hashlib.sha256("\0".join(map(str, ["openflamingo", p.demo, p.query, p.separator, EOC]))
                                          .encode()).hexdigest()[:12]

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers prepare batches with the tokenizer and image transform; they never need the weights.
        state = dict(self.__dict__)
        state["built"] = None
        state["_processor"] = self.built.image_processor
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def image_processor(self) -> Any:
        return self.__dict__.get("_processor") or self.built.image_processor

    def prompt(self, item: Item, demos: list[Item]) -> str:
        p = self.prompt_cfg

        def fill(template: str, it: Item, answer: str) -> str:
            text = str(template).format(question=it.question, answer=answer)
            return text if it.image_path else text.replace("<image>", "")

        return "".join(fill(p.demo, d, d.answer) + EOC + str(p.separator) for d in demos) + fill(p.query, item, "")

    def sort_key(self, item: Item, demos: list[Item]) -> int:
        return len(self.tokenizer(self.prompt(item, demos))["input_ids"])

    def _tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def prepare(self, items: list[Item], demos: list[list[Item]]) -> dict[str, torch.Tensor]:
        kept = []
        for item, ds in zip(items, demos, strict=True):
            ds = list(ds)
            # Too long: whole demos go from the front, farthest from the query; the query itself is never cut.
            while self._tokens(self.prompt(item, ds)) > self.max_length:
                if not ds:
                    raise UserError(f"item {item.id}: the query alone is past model.max_length={self.max_length} "
                                    "tokens; raise it")
                ds = ds[1:]
            kept.append(ds)
        texts = [self.prompt(it, ds) for it, ds in zip(items, kept, strict=True)]
        enc = self.tokenizer(texts, padding="longest", return_tensors="pt")
        pictures = [[d.image_path for d in ds if d.image_path] + [it.image_path] for it, ds in zip(items, kept)]
        cache: dict[str, torch.Tensor] = {}
        for path in {p for row in pictures for p in row}:
            with Image.open(path) as img:
                cache[path] = self.image_processor(img.convert("RGB"))
        shape = next(iter(cache.values())).shape
        vision = torch.zeros((len(items), max(map(len, pictures)), 1, *shape))
        for i, row in enumerate(pictures):
            for j, path in enumerate(row):
                vision[i, j, 0] = cache[path]
        return {"vision_x": vision, "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def _inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        vision = batch["vision_x"].to(self.device, dtype=self.built.dtype)
        # token ids and masks stay integer (OpenFlamingo's eval casts them to the float dtype under bf16/fp16)
        return vision, batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)

    @torch.inference_mode()
    def generate(self, batch: dict[str, torch.Tensor]) -> list[str]:
        from evalrunner.models.openflamingo_build import autocast_context

        g = self.generation
        if g is None:
            raise RuntimeError("generate() on a classification dataset, which ranks candidates instead")
        vision, ids, mask = self._inputs(batch)
        with autocast_context(self.device, self.built.autocast):
            out = self.built.model.generate(vision, ids, mask.bool(), min_new_tokens=0,
                                            max_new_tokens=int(g.max_new_tokens), num_beams=int(g.num_beams),
                                            length_penalty=float(g.length_penalty),
                                            pad_token_id=self.tokenizer.pad_token_id)
        return self.tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)

    @torch.inference_mode()
    def rank(self, batch: dict[str, torch.Tensor], candidates: Sequence[str]) -> LogLikelihoods:
        from evalrunner.models.openflamingo_build import autocast_context

        key = tuple(candidates)
        if getattr(self, "_candidate_key", None) != key:
            self._candidate_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in candidates]
            self._candidate_key = key
        vision, ids, mask = self._inputs(batch)
        model = self.built.model
        lm = model.lang_encoder
        model.cache_media(input_ids=ids, vision_x=vision)  # the images once; the prompt pass sets media locations
        layers = lm._get_decoder_layers()
        vis = layers[0].vis_x
        prompts: dict[str, torch.Tensor] = {}

        def condition(row: int, copies: int) -> None:
            # A chunk repeats one prompt's cache: its rows attend to that prompt's images after its last one.
            located = prompts.setdefault("media", layers[0].media_locations)[row : row + 1].expand(copies, -1)
            for layer in layers:
                layer.condition_vis_x(vis[row : row + 1].expand(copies, *vis.shape[1:]))
                layer.condition_media_locations(located)

        try:
            with autocast_context(self.device, self.built.autocast):
                total, mean = candidate_logprobs(lm, {"input_ids": ids, "attention_mask": mask}, self._candidate_ids,
                                                 self.rank_chunk, int(self.tokenizer.pad_token_id), None,
                                                 before_chunk=condition)
        finally:
            model.uncache_media()
        return LogLikelihoods(total=total, mean=mean)
