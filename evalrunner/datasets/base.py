"""The dataset contract: every member the job, the tasks and the demos use, and the one constructor.

A dataset names the config keys of the files (and folders) it reads; the base resolves them against data_root,
loads the splits through the index (parsed by `parse`, checked by `entries`) and refuses an empty test split. A
subclass writes `parse` and `score`, plus `postprocess` when it generates or `candidates` and `decide` when it
ranks; `task` is a class attribute (a YAML-only dataset sets it from its file), never a separate config key.
"""

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from omegaconf import DictConfig

from evalrunner.datasets import index
from evalrunner.datasets.item import Item, Score
from evalrunner.errors import UserError

__all__ = ["Dataset", "Item", "Score", "check_images", "prediction_records", "resolve"]
TASKS = ("vqa", "caption", "classification")


def resolve(data_root: Path, key: str, value: str) -> Path:
    """A dataset path from config: absolute, or relative to data_root."""
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else data_root / path


class Dataset(ABC):
    task: str  # "vqa" | "caption" | "classification": how the job predicts (generate or rank) and prompts
    id_key: str  # the key of an item's id in predictions.json ("question_id", "image_id", ...)
    text_key: str  # the key of the prediction in predictions.json ("answer", "caption", ...)
    metric: str  # result.json's "metric"
    files: ClassVar[tuple[str, ...]] = ()  # config keys of the files parse() reads (null = none): the index key
    folders: ClassVar[tuple[str, ...]] = ()  # config keys of folders (images), resolved like the files
    test_key: ClassVar[str] = ""  # the config key named when the test split is empty
    candidates: Sequence[str] = ()  # classification: the texts ranked as each item's continuation
    data_digest: str  # the identity of the data read (the index key): a job's fingerprint covers it

    def __init__(self, cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> None:
        self.cfg, self.data_root = cfg, data_root
        self.paths = {k: resolve(data_root, f"dataset.{k}", cfg[k]) for k in (*self.files, *self.folders)
                      if cfg[k] is not None}
        self.configure(cfg)  # option checks first: a wrong value is named before any file is read
        self._test, self._demos, self.data_digest = index.load(self, cfg, data_root, index_dir)
        if not len(self._test):
            key = self.test_key or self.files[0]
            raise UserError(f"dataset.{key}: {self.paths.get(key, cfg.get(key))} has no test items; "
                            f"point dataset.{key} at a split that has some")

    def configure(self, cfg: DictConfig) -> None:  # noqa: B027  (an optional hook: most datasets have no options)
        """Check the dataset's own options; called before any file is read."""

    def sources(self) -> list[Path]:
        """The files (and folders) parse() reads, in a fixed order: their identity is the index key."""
        return [self.paths[k] for k in self.files if k in self.paths]

    @abstractmethod
    def parse(self) -> tuple[list[Item], list[Item]]:
        """(test items, demo pool) from the source files; bad entries through evalrunner.datasets.entries."""

    def test_items(self) -> Sequence[Item]:
        return self._test  # a list, or the index's lazy sequence (datasets/itemfile.py)

    def demo_pool(self) -> Sequence[Item]:
        return self._demos

    def postprocess(self, text: str) -> str:
        """A generated text as the prediction (generation tasks)."""
        raise NotImplementedError(f"{type(self).__name__} ranks candidates; it does not post-process text")

    def decide(self, mean: np.ndarray) -> Any:
        """One item's prediction (JSON-able) from its per-token mean log-likelihood of each candidate (ranking)."""
        raise NotImplementedError(f"{type(self).__name__} generates text; it does not rank candidates")

    def record(self, item_id: int, prediction: str) -> dict[str, Any]:
        """One entry of predictions.json; a dataset whose challenge takes another format overrides it."""
        return {self.id_key: item_id, self.text_key: prediction}

    @abstractmethod
    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score: ...


def prediction_records(dataset: Dataset, predictions: Mapping[int, str]) -> list[dict[str, Any]]:
    """predictions.json, by item id."""
    return [dataset.record(i, p) for i, p in sorted(predictions.items())]


def check_images(items: Sequence[Item], key: str) -> None:
    missing = [it.image_path for it in items if not os.path.isfile(it.image_path)]
    if missing:
        raise UserError(
            f"{key}: {len(missing)} image(s) not found, first {missing[0]}; check data_root and {key}"
        )
