"""OpenFlamingo checkpoints (`model=openflamingo`): beam search through `Flamingo.generate`, and ranking against each
prompt's KV cache.

Its prompt style is Flamingo's with `<image>` for an image and `<|endofchunk|>` after each demo: the prompt builder
then writes OpenFlamingo's eval prompts (a demo shown as text only loses its `<image>`). Images go in as
(B, T_img, 1, C, H, W), zero-padded, the text left-padded. open_flamingo is imported inside the class only: the
registry imports this module regardless.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig

from evalrunner.images import open_rgb
from evalrunner.models import reuse
from evalrunner.models.base import Backend
from evalrunner.models.hf_rank import candidate_logprobs
from evalrunner.prompts import FLAMINGO, PromptStyle
from evalrunner.registry import register
from evalrunner.requests import GenerateRequest, LogLikelihoods, RankRequest, Request

EOC = "<|endofchunk|>"
_BUILD_KEYS = ("vision_encoder", "vision_pretrained", "lm_path", "tokenizer_path", "cross_attn_every_n_layers",
               "checkpoint", "precision", "trust_remote_code")


@dataclass
class Prepared:
    vision_x: torch.Tensor  # (B, T_img, 1, C, H, W), zero-padded
    input_ids: torch.Tensor  # left-padded
    attention_mask: torch.Tensor
    requests: list[Request]


@register("model", "openflamingo")
class OpenFlamingoModel(Backend):
    ranks = True
    sorts = True
    prompt_style = PromptStyle(FLAMINGO, image_token="<image>", demo_end=EOC)

    def __init__(self, cfg: DictConfig, device: torch.device, max_images: int) -> None:
        from evalrunner.models import openflamingo_build

        settings = {k: cfg[k] for k in _BUILD_KEYS}
        self.built = reuse.shared("openflamingo", settings, device, lambda: openflamingo_build.build(cfg, device))
        self.device = device
        self.tokenizer = self.built.tokenizer
        self.tokenizer.padding_side = "left"  # ranking too: hf_rank turns a left-padded batch around
        self.image_processor = self.built.image_processor
        self.rank_chunk = int(cfg.get("rank_chunk") or 64)
        self.context_length = int(cfg.max_length)
        self._candidate_key: tuple[str, ...] = ()
        self._candidate_ids: list[list[int]] = []

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers prepare batches with the tokenizer and image transform; they never need the weights.
        return {k: v for k, v in self.__dict__.items() if k != "built"}

    def _text(self, request: Request) -> str:
        return request.prompt.text(self.prompt_style.image_token)

    def sort_key(self, request: Request) -> int:
        return len(self.tokenizer(self._text(request))["input_ids"])

    def prepare(self, requests: Sequence[Request]) -> Prepared:
        enc = self.tokenizer([self._text(r) for r in requests], padding="longest", return_tensors="pt")
        pictures = [r.prompt.images for r in requests]
        pixels: dict[str, torch.Tensor] = {}
        for path in {p for row in pictures for p in row}:
            pixels[path] = self.image_processor(open_rgb(path))
        shape = next(iter(pixels.values())).shape
        vision = torch.zeros((len(requests), max(map(len, pictures)), 1, *shape))
        for i, row in enumerate(pictures):
            for j, path in enumerate(row):
                vision[i, j, 0] = pixels[path]
        return Prepared(vision, enc["input_ids"], enc["attention_mask"], list(requests))

    def prompt_lengths(self, batch: Prepared) -> list[int]:
        lengths: list[int] = batch.attention_mask.sum(dim=1).tolist()
        return lengths

    def _inputs(self, batch: Prepared) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        vision = batch.vision_x.to(self.device, dtype=self.built.dtype)
        # token ids and masks stay integer (OpenFlamingo's eval casts them to the float dtype under bf16/fp16)
        return vision, batch.input_ids.to(self.device), batch.attention_mask.to(self.device)

    @torch.inference_mode()
    def generate(self, batch: Prepared) -> list[str]:
        from evalrunner.models.openflamingo_build import autocast_context

        g = batch.requests[0]
        if not isinstance(g, GenerateRequest):
            raise TypeError("generate() takes a batch of GenerateRequests")
        vision, ids, mask = self._inputs(batch)
        with autocast_context(self.device, self.built.autocast):
            # Flamingo.generate stops at <|endofchunk|> (its eoc_token_id); the dataset cuts any other stop text
            out = self.built.model.generate(vision, ids, mask.bool(), min_new_tokens=0,
                                            max_new_tokens=g.max_new_tokens, num_beams=g.num_beams,
                                            length_penalty=g.length_penalty, pad_token_id=self.tokenizer.pad_token_id)
        texts: list[str] = self.tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
        return texts

    @torch.inference_mode()
    def rank(self, batch: Prepared) -> LogLikelihoods:
        from evalrunner.models.openflamingo_build import autocast_context

        r = batch.requests[0]
        if not isinstance(r, RankRequest):
            raise TypeError("rank() takes a batch of RankRequests")
        if self._candidate_key != r.candidates:  # tokenized on their own, as OpenFlamingo does
            self._candidate_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in r.candidates]
            self._candidate_key = r.candidates
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
                mean = candidate_logprobs(lm, {"input_ids": ids, "attention_mask": mask}, self._candidate_ids,
                                          self.rank_chunk, int(self.tokenizer.pad_token_id), None,
                                          before_chunk=condition)
        finally:
            model.uncache_media()
        return LogLikelihoods(mean=mean)
