"""ImageNet-1k in the ImageFolder layout (val/<wnid>/*.JPEG, train/<wnid>/*.JPEG), by ranking every class name.

Names come from a wnid -> name table, by wnid, never by folder position: a subset of the class folders still gets
the right names. The default table is the standard 1,000 names of CLIP and wise-ft (OpenFlamingo's list), in
`imagenet_classes.tsv`. Two pairs of classes share a name there ("missile", "sunglasses"): a name is one candidate,
and it is right for either class, as in OpenFlamingo, which compares names.
"""

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from evalrunner.datasets.base import Dataset, Item, Score
from evalrunner.datasets.entries import lines
from evalrunner.errors import UserError
from evalrunner.metrics.classification import topk_hits
from evalrunner.registry import register

STANDARD_NAMES = Path(__file__).with_name("imagenet_classes.tsv")
LOCAL_NAMES = "class_names.tsv"  # a table next to train/ and val/ replaces the standard one
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
TOP_K = 5
DEMO_IDS = 10_000_000  # demo image ids start here, so no demo ever shares an id with a test image


def read_names(path: Path, key: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for number, line in lines(path, key, "a wnid<TAB>name table, or null for the standard one"):
        wnid, tab, name = line.rstrip("\r\n").partition("\t")
        if not tab or not wnid or not name.strip():
            raise UserError(f"{key}: line {number} of {path} is not 'wnid<TAB>name'; fix the table")
        names[wnid] = name.strip()
    return names


def image_folder(root: Path, key: str, names: Mapping[str, str], first_id: int) -> list[Item]:
    if not root.is_dir():
        raise UserError(f"{key}: directory not found: {root}; set data_root or {key} to an ImageFolder "
                        "(<dir>/<wnid>/*.JPEG)")
    wnids = sorted(e.name for e in os.scandir(root) if e.is_dir())
    unknown = [w for w in wnids if w not in names]
    if unknown:
        raise UserError(f"{key}: {len(unknown)} class folder(s) of {root} are not in the class-name table, first "
                        f"{unknown[0]}; name folders by wnid, or set dataset.class_names")
    files = [(w, f) for w in wnids for f in sorted(os.listdir(root / w)) if f.lower().endswith(IMAGE_SUFFIXES)]
    if not files:
        raise UserError(f"{key}: {root} holds no images in <wnid>/ folders; it must be an ImageFolder")
    return [Item(id=first_id + i, image_id=first_id + i, image_path=str(root / w / f), answer=names[w],
                 references=(names[w],)) for i, (w, f) in enumerate(files)]


@register("dataset", "imagenet")
class ImageNet(Dataset):
    task = "classification"
    id_key = "image"
    text_key = "class"
    metric = "top-1 accuracy"
    folders = ("test_dir", "demo_dir", "class_names")
    test_key = "test_dir"

    def configure(self, cfg: DictConfig) -> None:
        self.test_dir, self.demo_dir = self.paths["test_dir"], self.paths["demo_dir"]
        local = self.test_dir.parent / LOCAL_NAMES
        table = self.paths.get("class_names") or (local if local.is_file() else STANDARD_NAMES)
        self.names = read_names(table, "dataset.class_names")
        self.class_names = table
        self.candidates = list(dict.fromkeys(self.names.values()))  # table order; a shared name is one candidate

    def sources(self) -> list[Path]:
        # A folder's mtime changes when an entry is added, removed or renamed: the root's for class folders,
        # each class folder's for its images.
        folders = [d for root in (self.test_dir, self.demo_dir) for d in (root, *sorted(
            Path(e.path) for e in os.scandir(root) if e.is_dir()))]
        return [self.class_names, *folders]

    def parse(self) -> tuple[list[Item], list[Item]]:
        return (image_folder(self.test_dir, "dataset.test_dir", self.names, 0),
                image_folder(self.demo_dir, "dataset.demo_dir", self.names, DEMO_IDS))

    def decide(self, mean: np.ndarray) -> list[str]:
        """The top-5 names by per-token mean log-likelihood (OpenFlamingo's normalize_length); ties go to the
        earlier name in the table, so the choice never depends on anything else."""
        order = np.argsort(-mean, kind="stable")[:TOP_K]
        return [self.candidates[j] for j in order]

    def record(self, item_id: int, prediction: str) -> dict[str, Any]:
        top = json.loads(prediction)
        # predictions.json names each image by its path under imagenet/ (the folder holding val/ and train/)
        relative = Path(self._test[item_id].image_path).relative_to(self.test_dir.parent).as_posix()  # id = position
        return {"image": relative, "class": top[0], "top5": top}

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        ranked = [json.loads(predictions[it.id]) for it in items]
        labels = [it.references[0] for it in items]
        top1 = topk_hits(ranked, labels, 1)
        top5 = topk_hits(ranked, labels, TOP_K)
        per_item = {it.id: 100.0 * hit for it, hit in zip(items, top1)}
        return Score(100 * sum(top1) / len(items), per_item, {"top5": 100 * sum(top5) / len(items)})
