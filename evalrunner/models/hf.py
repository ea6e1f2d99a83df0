"""Any Hugging Face image-text-to-text checkpoint: few-shot prompts of interleaved images and text, batched generation.

transformers is imported inside the class only: the registry imports this module whether or not it is installed.
"""

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import torch
from omegaconf import DictConfig
from PIL import Image

from evalrunner.datasets import task_of
from evalrunner.datasets.base import Item
from evalrunner.errors import UserError
from evalrunner.images import open_rgb
from evalrunner.models import reuse
from evalrunner.models.base import LogLikelihoods
from evalrunner.models.hf_rank import candidate_logprobs
from evalrunner.registry import register

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


@register("model", "hf")
class HFModel:
    def __init__(self, cfg: DictConfig, dataset_cfg: DictConfig, device: torch.device) -> None:
        try:
            import transformers
        except ImportError:
            raise UserError("model=hf needs transformers: pip install 'evalrunner[hf]'") from None
        # sort_key tokenizes in this process before DataLoader workers fork; the Rust tokenizer's threads must not.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        path = str(cfg.path)
        _check_path(path)
        self.dtype = resolve_dtype(str(cfg.dtype), device)
        self.is_vqa = task_of(dataset_cfg) == "vqa"
        self.is_rank = task_of(dataset_cfg) == "classification"  # scores candidates (rank) instead of generating
        self.prompt_cfg = dataset_cfg.prompt
        self.generation = None if self.is_rank else dataset_cfg.generation
        self.rank_chunk = int(cfg.get("rank_chunk") or 64)
        # Only what the processor and the weights are built from: the later jobs of this process get the same ones.
        settings = {k: cfg[k] for k in ("trust_remote_code", "attn_implementation", "device_map")}
        self.processor, self.model = reuse.shared("hf", {**settings, "path": path, "dtype": str(self.dtype)}, device,
                                                  lambda: self._load(transformers, path, cfg, device))
        self.tokenizer = self.processor.tokenizer
        # New tokens must follow every prompt directly; ranking right-pads instead (see hf_rank: its positions).
        self.tokenizer.padding_side = "right" if self.is_rank else "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.image_token = str(getattr(self.processor, "image_token", None) or "<image>")
        self.chat_template = self._pick_chat_template(cfg.chat_template)
        if self.chat_template is not None:
            parts = [self.chat_template, self.prompt_cfg.instruction]
        else:
            parts = [self.prompt_cfg.demo, self.prompt_cfg.query, self.prompt_cfg.separator, self.image_token]
        self.prompt_style = "chat" if self.chat_template is not None else "flamingo"
        self.images_first = self.prompt_style == "flamingo" and type(self.processor).__name__ in _IMAGES_FIRST
        if self.images_first:
            parts.append("images first")
        self.prompt_hash = hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:12]
        text_config = self.model.config.get_text_config()
        context = cfg.max_length or getattr(text_config, "max_position_embeddings", None)
        self.context = None if context is None else int(context)
        reserve = 0 if self.generation is None else int(self.generation.max_new_tokens)  # rank checks its own
        self.max_prompt_tokens = None if context is None else int(context) - reserve

    def _load(self, transformers: Any, path: str, cfg: DictConfig, device: torch.device) -> tuple[Any, Any]:
        try:
            processor = transformers.AutoProcessor.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
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
        return {k: v for k, v in self.__dict__.items() if k != "model"}

    def _user_turn(self, item: Item) -> list[dict[str, str]]:
        instruction = str(self.prompt_cfg.instruction)
        text = f"{item.question}\n{instruction}" if self.is_vqa or item.question else instruction  # e.g. a meme's text
        # A text-only demo (image_path "", OpenFlamingo's zero-shot) gets no image in its turn.
        return [{"type": "image"}] * bool(item.image_path) + [{"type": "text", "text": text}]

    def prompt(self, item: Item, demos: list[Item]) -> str:
        """The full prompt text, with one image placeholder per demo and one for the query, in image order."""
        if self.chat_template is not None:
            messages: list[dict[str, Any]] = []
            for d in demos:
                messages.append({"role": "user", "content": self._user_turn(d)})
                messages.append({"role": "assistant", "content": [{"type": "text", "text": d.answer}]})
            messages.append({"role": "user", "content": self._user_turn(item)})
            return self.processor.apply_chat_template(
                messages, chat_template=self.chat_template, add_generation_prompt=True, tokenize=False
            )
        p = self.prompt_cfg
        image = "" if self.images_first else self.image_token
        fill = [str(p.demo).replace("<image>", image if d.image_path else "")
                .format(question=d.question, answer=d.answer) for d in demos]
        fill.append(str(p.query).replace("<image>", image).format(question=item.question, answer=""))
        lead = self.image_token * (sum(bool(d.image_path) for d in demos) + 1) if self.images_first else ""
        return lead + str(p.separator).join(fill)

    def sort_key(self, item: Item, demos: list[Item]) -> int:
        return len(self.tokenizer(self.prompt(item, demos), add_special_tokens=False)["input_ids"])

    def _encode(self, items: list[Item], demos: list[list[Item]], images: dict[str, Image.Image]) -> Any:
        texts = [self.prompt(it, ds) for it, ds in zip(items, demos, strict=True)]
        pictures = [
            [images[d.image_path] for d in ds if d.image_path] + [images[it.image_path]]
            for it, ds in zip(items, demos, strict=True)
        ]
        return self.processor(text=texts, images=pictures, padding=True, return_tensors="pt")

    def prepare(self, items: list[Item], demos: list[list[Item]]) -> Any:
        images: dict[str, Image.Image] = {}
        for path in [it.image_path for it in items] + [d.image_path for ds in demos for d in ds]:
            if path and path not in images:
                images[path] = open_rgb(path)
        kept = [list(ds) for ds in demos]
        batch = self._encode(items, kept, images)
        limit = self.max_prompt_tokens
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        if limit is None or max(lengths) <= limit:
            return batch
        for i, n in enumerate(lengths):
            # Too long: drop whole demos from the front, farthest from the query, never cutting the query.
            while n > limit:
                if not kept[i]:
                    raise UserError(
                        f"item {items[i].id}: the query alone is {n} tokens, past the {limit} that the "
                        "context length (model.max_length) leaves after max_new_tokens; raise "
                        "model.max_length or shorten the prompt"
                    )
                kept[i] = kept[i][1:]
                n = int(self._encode([items[i]], [kept[i]], images)["attention_mask"].sum())
        return self._encode(items, kept, images)

    @torch.inference_mode()
    def generate(self, batch: Any) -> list[str]:
        device = self.model.device
        # labels (PaliGemma's processor makes them for fine-tuning) would have generate compute a loss on each step.
        batch = {k: v for k, v in batch.items() if k != "labels"}
        # Only floating tensors take the model dtype: token ids and masks must stay integer.
        inputs = {
            k: v.to(device, dtype=self.dtype) if v.is_floating_point() else v.to(device)
            for k, v in batch.items()
            if isinstance(v, torch.Tensor)
        }
        inputs.update({k: v for k, v in batch.items() if not isinstance(v, torch.Tensor)})
        g = self.generation
        if g is None:
            raise RuntimeError("generate() on a classification dataset, which ranks candidates instead")
        beams = int(g.num_beams)
        # length_penalty only means something to beam search; greedy decoding warns when it is passed.
        extra = {"length_penalty": float(g.length_penalty)} if beams > 1 else {}
        out = self.model.generate(
            **inputs,
            max_new_tokens=int(g.max_new_tokens),
            num_beams=beams,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            **extra,
        )
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    @torch.inference_mode()
    def rank(self, batch: Any, candidates: Sequence[str]) -> LogLikelihoods:
        # Candidates are tokenized on their own and appended to the prompt's tokens, as OpenFlamingo does.
        key = tuple(candidates)
        if getattr(self, "_candidate_key", None) != key:
            self._candidate_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in candidates]
            self._candidate_key = key
        device = self.model.device
        inputs = {
            k: v.to(device, dtype=self.dtype) if v.is_floating_point() else v.to(device)
            for k, v in batch.items()
            if isinstance(v, torch.Tensor) and k != "labels"
        }
        total, mean = candidate_logprobs(self.model, inputs, self._candidate_ids, self.rank_chunk,
                                         int(self.tokenizer.pad_token_id), self.context)
        return LogLikelihoods(total=total, mean=mean)
