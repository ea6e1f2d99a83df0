"""Captions in a Karpathy split file (dataset_coco.json, dataset_flickr30k.json), scored with CIDEr-D."""

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evalrunner.datasets import index
from evalrunner.datasets.base import Item, Loaded, Score, expect_list, load_json, resolve
from evalrunner.errors import UserError
from evalrunner.metrics import cider_scores


class KarpathyCaptions(Loaded):
    task = "caption"
    id_key = "image_id"
    text_key = "caption"
    metric = "CIDEr"
    file_name = "dataset_coco.json"  # the split file's official name, for error messages

    def image_id(self, image: dict[str, Any]) -> int:
        raise NotImplementedError

    def image_path(self, image_dir: Path, image: dict[str, Any]) -> str:
        raise NotImplementedError

    def __init__(self, cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> None:
        self.tokenizer = cfg.cider_tokenizer
        if self.tokenizer not in ("python", "java"):
            raise UserError(f"dataset.cider_tokenizer={self.tokenizer!r}: choose python or java")
        if self.tokenizer == "java" and shutil.which("java") is None:
            raise UserError("dataset.cider_tokenizer=java needs Java on PATH: install a JRE, "
                            "or set dataset.cider_tokenizer=python")
        self.path = resolve(data_root, "dataset.karpathy_file", cfg.karpathy_file)
        self.image_dir = resolve(data_root, "dataset.image_dir", cfg.image_dir)
        self.test_split, self.demo_split = cfg.test_split, cfg.demo_split
        self._test, self._demos = index.load(self, cfg, data_root, index_dir)

    def sources(self) -> list[Path]:
        return [self.path]

    def parse(self) -> tuple[list[Item], list[Item]]:
        path, kind = self.path, f"a Karpathy split file ({self.file_name})"
        images = expect_list(load_json(path, "dataset.karpathy_file"), "images", path, "dataset.karpathy_file", kind)
        splits: dict[str, list[Item]] = {self.test_split: [], self.demo_split: []}
        try:
            for img in images:
                split = splits.get(img["split"])
                if split is None:
                    continue
                captions = tuple(s["raw"] for s in img["sentences"])
                image_id = self.image_id(img)
                split.append(Item(id=image_id, image_id=image_id, image_path=self.image_path(self.image_dir, img),
                                  answer=captions[0] if captions else "", references=captions))
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"dataset.karpathy_file: {path} has an image entry without {e}; "
                            f"it must be {kind}") from None
        for split in (self.test_split, self.demo_split):
            if not splits[split]:
                raise UserError(f"dataset.karpathy_file: {path} has no images of split {split!r}; "
                                "check dataset.test_split / dataset.demo_split")
        return splits[self.test_split], splits[self.demo_split]

    def postprocess(self, text: str) -> str:
        return text.split("Output", 1)[0].replace('"', "").strip()

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        # The jar's tokens depend on the image order: it is the test items' (and predictions.json's).
        value, per_image = cider_scores(predictions, {it.id: it.references for it in items}, tokenizer=self.tokenizer)
        return Score(value, per_image)
