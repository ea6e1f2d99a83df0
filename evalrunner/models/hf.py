"""Any Hugging Face image-text-to-text checkpoint: requests rendered with its chat template or its image token,
batched generation, and candidates ranked against the prompt's KV cache (hf_rank.py).

transformers is imported inside the class only: the registry imports this module whether or not it is installed.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from PIL import Image

from evalrunner.errors import UserError
from evalrunner.images import open_rgb
from evalrunner.models import reuse
from evalrunner.models.base import Backend
from evalrunner.models.hf_rank import candidate_logprobs
from evalrunner.prompts import CHAT, FLAMINGO, PromptStyle
from evalrunner.registry import register
from evalrunner.requests import GenerateRequest, LogLikelihoods, Prompt, RankRequest, Request, Text

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_MODEL_CLASSES = ("AutoModelForImageTextToText", "AutoModelForVision2Seq")  # the second: transformers < 4.46 names
# PaliGemma saw every image ahead of <bos> and the text in training, and its processor puts <bos> right after the last
# image placeholder: placeholders between demos would cut the text with a <bos>, so its images all go first.
_IMAGES_FIRST = ("PaliGemmaProcessor",)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if name not in _DTYPES:
        raise UserError(f"model.dtype={name!r}: choose auto, {', '.join(_DTYPES)}")
    return _DTYPES[name]


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _check_path(path: str) -> None:
    """Fail early on a local path that is no checkpoint; anything else that is not a directory is a hub id."""
    local = os.path.exists(path) or os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1
    if local and not os.path.isdir(os.path.expanduser(path)):
        raise UserError(f"model.path={path}: no such checkpoint directory")
    if local and not os.path.isfile(os.path.join(os.path.expanduser(path), "config.json")):
        raise UserError(f"model.path={path}: not a Hugging Face checkpoint (no config.json in the directory)")


def chat_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """A chat prompt's turns as the messages a processor's chat template takes, each image a placeholder."""
    return [{"role": turn.role, "content": [{"type": "text", "text": p.text} if isinstance(p, Text)
                                            else {"type": "image"} for p in turn.parts]}
            for turn in prompt.turns]


@dataclass
class Encoded:
    """A prepared batch: the processor's output and the requests it encodes."""

    inputs: Any  # input_ids, attention_mask, pixel_values, ...
    requests: list[Request]


@register("model", "hf")
class HFModel(Backend):
    ranks = True
    sorts = True

    def __init__(self, cfg: DictConfig, device: torch.device, max_images: int) -> None:
        try:
            import transformers
        except ImportError:
            raise UserError("model=hf needs transformers: pip install 'evalrunner[hf]'") from None
        # sort_key tokenizes in this process before DataLoader workers fork; the Rust tokenizer's threads must not.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        path = str(cfg.path)
        _check_path(path)
        self.dtype = resolve_dtype(str(cfg.dtype), device)
        self.rank_chunk = int(cfg.get("rank_chunk") or 64)
        # Only what the processor and the weights are built from: the later jobs of this process get the same ones.
        settings = {k: cfg[k] for k in ("trust_remote_code", "attn_implementation", "device_map")}
        self.processor, self.model = reuse.shared("hf", {**settings, "path": path, "dtype": str(self.dtype)}, device,
                                                  lambda: self._load(transformers, path, cfg, device))
        self.tokenizer = self.processor.tokenizer
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.image_token = str(getattr(self.processor, "image_token", None) or "<image>")
        self.chat_template = self._pick_chat_template(cfg.chat_template)
        if self.chat_template is not None:
            self.prompt_style = PromptStyle(CHAT, template=self.chat_template)
        else:
            self.prompt_style = PromptStyle(FLAMINGO, image_token=self.image_token,
                                            images_first=type(self.processor).__name__ in _IMAGES_FIRST)
        text_config = self.model.config.get_text_config()
        context = cfg.max_length or getattr(text_config, "max_position_embeddings", None)
        self.context_length = None if context is None else int(context)
        self._images: dict[str, Image.Image] = {}
        self._candidate_key: tuple[str, ...] = ()
        self._candidate_ids: list[list[int]] = []

    def _load(self, transformers: Any, path: str, cfg: DictConfig, device: torch.device) -> tuple[Any, Any]:
        try:
            # transformers 5 prefers torchvision image processors when torchvision imports: pin the PIL ones, so
            # pixels (and scores) don't depend on whether torchvision is installed (scripts/install_openflamingo.sh)
            pil = {"backend": "pil"} if int(transformers.__version__.split(".")[0]) >= 5 else {}
            processor = transformers.AutoProcessor.from_pretrained(path, trust_remote_code=cfg.trust_remote_code,
                                                                   **pil)
            return processor, self._load_model(transformers, path, cfg, device)
        except (OSError, ValueError) as e:
            raise UserError(f"model.path={path}: cannot load it as a checkpoint ({_first_line(e)})") from None
        except ImportError as e:
            # e.g. Qwen2-VL's processor always builds its video processor, which needs torchvision.
            needs = _first_line(e).split(". ")[0]
            raise UserError(f"model.path={path}: loading it needs a package that is not installed ({needs})") from None

    def _load_model(self, transformers: Any, path: str, cfg: DictConfig, device: torch.device) -> Any:
        kwargs: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code}
        # transformers 4.56 renamed torch_dtype to dtype; both spellings load the weights in the dtype asked.
        new_name = tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (4, 56)
        kwargs["dtype" if new_name else "torch_dtype"] = self.dtype
        if cfg.attn_implementation is not None:
            kwargs["attn_implementation"] = cfg.attn_implementation
        if cfg.device_map is not None:
            kwargs["device_map"] = cfg.device_map
        classes = [getattr(transformers, name) for name in _MODEL_CLASSES if hasattr(transformers, name)]
        model: Any = None
        for i, cls in enumerate(classes):
            try:
                model = cls.from_pretrained(path, **kwargs)
                break
            except ValueError as e:
                if i == len(classes) - 1 or "Unrecognized configuration" not in str(e):
                    raise
        if cfg.device_map is None:
            model = model.to(device)
        return model.eval()

    def _pick_chat_template(self, setting: Any) -> str | None:
        own = getattr(self.processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)
        if setting is False or setting == "false":
            return None
        if setting == "auto":
            return own if isinstance(own, str) else None
        if setting is True or setting == "true":
            if not isinstance(own, str):
                raise UserError("model.chat_template=true: the processor has no chat template; use auto or false")
            return own
        return str(setting)  # a Jinja template given in the config

    def __getstate__(self) -> dict[str, Any]:
        # Workers started by spawn or forkserver need only the processor to prepare batches, never the weights.
        return {k: v for k, v in self.__dict__.items() if k not in ("model", "_images")} | {"_images": {}}

    def render(self, prompt: Prompt) -> str:
        """The prompt's text, with one image placeholder per image, in image order."""
        if not prompt.is_chat:
            return prompt.text(self.image_token)
        text: str = self.processor.apply_chat_template(
            chat_messages(prompt), chat_template=self.chat_template, add_generation_prompt=True, tokenize=False
        )
        return text

    def sort_key(self, request: Request) -> int:
        return len(self.tokenizer(self.render(request.prompt), add_special_tokens=False)["input_ids"])

    def _pictures(self, requests: Sequence[Request]) -> list[list[Image.Image]]:
        """Each request's images, decoded once per batch: truncation re-encodes single items of the last batch."""
        paths = {p for r in requests for p in r.prompt.images}
        images = {p: self._images[p] if p in self._images else open_rgb(p) for p in paths}
        if len(requests) > 1 or not paths <= self._images.keys():
            self._images = images
        return [[images[p] for p in r.prompt.images] for r in requests]

    def prepare(self, requests: Sequence[Request]) -> Encoded:
        # New tokens must follow every prompt directly; ranking right-pads instead (see hf_rank: its positions).
        self.tokenizer.padding_side = "right" if isinstance(requests[0], RankRequest) else "left"
        texts = [self.render(r.prompt) for r in requests]
        inputs = self.processor(text=texts, images=self._pictures(requests), padding=True, return_tensors="pt")
        return Encoded(inputs, list(requests))

    def prompt_lengths(self, batch: Encoded) -> list[int]:
        lengths: list[int] = batch.inputs["attention_mask"].sum(dim=1).tolist()
        return lengths

    def _on_device(self, inputs: Any) -> dict[str, Any]:
        # labels (PaliGemma's processor makes them for fine-tuning) would have the model compute a loss.
        # Only floating tensors take the model dtype: token ids and masks must stay integer.
        device = self.model.device
        return {k: v.to(device, dtype=self.dtype) if v.is_floating_point() else v.to(device)
                for k, v in inputs.items() if isinstance(v, torch.Tensor) and k != "labels"}

    @torch.inference_mode()
    def generate(self, batch: Encoded) -> list[str]:
        request = batch.requests[0]  # one batch, one dataset: the same settings for all
        if not isinstance(request, GenerateRequest):
            raise TypeError("generate() takes a batch of GenerateRequests")
        inputs = self._on_device(batch.inputs)
        inputs.update({k: v for k, v in batch.inputs.items() if not isinstance(v, torch.Tensor)})
        # length_penalty only means something to beam search; greedy decoding warns when it is passed.
        extra: dict[str, Any] = {"length_penalty": request.length_penalty} if request.num_beams > 1 else {}
        start = inputs["input_ids"].shape[1]
        if request.stop:
            extra["stopping_criteria"] = _stop_at(self.tokenizer, request.stop, start)
        out = self.model.generate(
            **inputs,
            max_new_tokens=request.max_new_tokens,
            num_beams=request.num_beams,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            **extra,
        )
        texts = self.tokenizer.batch_decode(out[:, start:], skip_special_tokens=True)
        return [_before(text, request.stop).strip() for text in texts]

    @torch.inference_mode()
    def rank(self, batch: Encoded) -> LogLikelihoods:
        request = batch.requests[0]
        if not isinstance(request, RankRequest):
            raise TypeError("rank() takes a batch of RankRequests")
        # Candidates are tokenized on their own and appended to the prompt's tokens, as OpenFlamingo does.
        if self._candidate_key != request.candidates:
            self._candidate_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in request.candidates]
            self._candidate_key = request.candidates
        mean = candidate_logprobs(self.model, self._on_device(batch.inputs), self._candidate_ids, self.rank_chunk,
                                  int(self.tokenizer.pad_token_id), self.context_length)
        return LogLikelihoods(mean=mean)


def _stop_at(tokenizer: Any, stop: tuple[str, ...], start: int) -> Any:
    """Ends each sequence once its new text holds a stop string (transformers' own stop_strings needs a tokenizer
    whose vocabulary it can take apart, which not every one allows)."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopAt(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            texts = tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=False)
            return torch.tensor([any(s in t for s in stop) for t in texts], device=input_ids.device)

    return StoppingCriteriaList([StopAt()])


def _before(text: str, stop: tuple[str, ...]) -> str:
    return min((text[: text.index(s)] for s in stop if s in text), key=len, default=text)
