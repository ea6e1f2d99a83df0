"""COCO captions in the Karpathy split (dataset_coco.json), scored with CIDEr-D."""

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig

from evalrunner.datasets.base import Item, Score, expect_list, load_json, resolve
from evalrunner.errors import UserError
from evalrunner.metrics import cider
from evalrunner.registry import register


@register("dataset", "coco")
class CocoCaptions:
    task = "caption"
    id_key = "image_id"
    text_key = "caption"
    metric = "CIDEr"

    def __init__(self, cfg: DictConfig, data_root: Path) -> None:
        self.tokenizer = cfg.cider_tokenizer
        if self.tokenizer not in ("python", "java"):
            raise UserError(f"dataset.cider_tokenizer={self.tokenizer!r}: choose python or java")
        if self.tokenizer == "java" and shutil.which("java") is None:
            raise UserError("dataset.cider_tokenizer=java needs Java on PATH: install a JRE, "
                            "or set dataset.cider_tokenizer=python")
        path = resolve(data_root, "dataset.karpathy_file", cfg.karpathy_file)
        images = expect_list(load_json(path, "dataset.karpathy_file"), "images", path, "dataset.karpathy_file",
                             "a Karpathy split file (dataset_coco.json)")
        image_dir = resolve(data_root, "dataset.image_dir", cfg.image_dir)
        self._splits: dict[str, list[Item]] = {cfg.test_split: [], cfg.demo_split: []}
        try:
            for img in images:
                split = self._splits.get(img["split"])
                if split is None:
                    continue
                captions = tuple(s["raw"] for s in img["sentences"])
                split.append(Item(id=int(img["cocoid"]), image_id=int(img["cocoid"]),
                                  image_path=str(image_dir / img["filepath"] / img["filename"]),
                                  answer=captions[0] if captions else "", references=captions))
        except (KeyError, TypeError) as e:
            raise UserError(f"dataset.karpathy_file: {path} has an image entry without {e}; "
                            "it must be a Karpathy split file (dataset_coco.json)") from None
        self.test_split, self.demo_split = cfg.test_split, cfg.demo_split
        for split in (cfg.test_split, cfg.demo_split):
            if not self._splits[split]:
                raise UserError(f"dataset.karpathy_file: {path} has no images of split {split!r}; "
                                "check dataset.test_split / dataset.demo_split")

    def test_items(self) -> list[Item]:
        return self._splits[self.test_split]

    def demo_pool(self) -> list[Item]:
        return self._splits[self.demo_split]

    def postprocess(self, text: str) -> str:
        return text.split("Output", 1)[0].replace('"', "").strip()

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        return Score(cider(predictions, {it.id: it.references for it in items}, tokenizer=self.tokenizer))
