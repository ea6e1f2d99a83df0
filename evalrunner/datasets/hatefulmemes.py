"""Hateful Memes (the challenge's jsonl files), by ranking "no" and "yes" as the answer; scored with ROC-AUC x100."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evalrunner.datasets.base import Dataset, Item, Score
from evalrunner.datasets.entries import integer, items_from, jsonl
from evalrunner.errors import UserError
from evalrunner.metrics.classification import roc_auc
from evalrunner.registry import register

ANSWERS = ("no", "yes")  # OpenFlamingo's HM_CLASSNAMES: label 0 is "no", label 1 "yes" (hateful)
SHAPE = "{id, img, label, text} as in the challenge's files"


def load_jsonl(path: Path, key: str, image_dir: Path, need_labels: bool) -> list[Item]:
    def make(rec: dict[str, Any]) -> Item:
        label = rec.get("label")
        if label not in (0, 1) and (need_labels or label is not None):
            raise KeyError("label (0 or 1)")
        # The file name comes from `img`, never from `id`: ids below 10000 are zero-padded in file names.
        meme = integer(rec["id"])
        answer = "" if label is None else ANSWERS[label]
        return Item(id=meme, image_id=meme, image_path=str(image_dir / rec["img"]), question=str(rec["text"]),
                    answer=answer, references=(answer,) if answer else ())

    items = items_from(jsonl(path, key, "the challenge's jsonl file"), make, key, path, SHAPE, where="line")
    if not items:
        raise UserError(f"{key}: {path} has no lines; point {key} at the challenge's jsonl file")
    return items


def p_second(mean: np.ndarray) -> float:
    """P(second candidate): the softmax over two length-normalised log-likelihoods, as OpenFlamingo."""
    with np.errstate(over="ignore"):  # exp overflows to inf for a sure first: P is then 0.0
        return float(1 / (1 + np.exp(mean[0] - mean[1])))  # the logistic form gives a tie exactly 0.5


@register("dataset", "hatefulmemes")
class HatefulMemes(Dataset):
    task = "classification"
    id_key = "id"
    text_key = "proba"
    metric = "ROC-AUC"
    candidates = list(ANSWERS)
    files = ("demo_file", "test_file")
    folders = ("image_dir",)

    def parse(self) -> tuple[list[Item], list[Item]]:
        image_dir = self.paths["image_dir"]
        demos = load_jsonl(self.paths["demo_file"], "dataset.demo_file", image_dir, need_labels=True)
        test = load_jsonl(self.paths["test_file"], "dataset.test_file", image_dir, need_labels=False)
        if len({bool(it.references) for it in test}) > 1:
            raise UserError(f"dataset.test_file: {self.cfg.test_file} labels some lines and not others; "
                            "use a file with labels for all (dev_seen) or none (a test split)")
        return test, demos

    @property
    def submission(self) -> bool:
        return not self._test[0].references  # a split without labels: predictions.json is submitted

    def decide(self, mean: np.ndarray) -> float:
        """P(hateful)."""
        return p_second(mean)

    def record(self, item_id: int, prediction: str) -> dict[str, Any]:
        proba = json.loads(prediction)
        return {"id": item_id, "proba": proba, "label": int(proba > 0.5)}  # the challenge's submission columns

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        if self.submission:
            return Score(None)
        labels = [ANSWERS.index(it.references[0]) for it in items]
        if len(set(labels)) < 2:
            raise UserError("dataset.test_file: ROC-AUC needs hateful and non-hateful memes among the test items; "
                            "use more of them (num_samples)")
        truth = {str(it.id): bool(label) for it, label in zip(items, labels)}  # the report's ROC-AUC resamples
        return Score(100 * roc_auc([json.loads(predictions[it.id]) for it in items], labels),
                     report_data={"labels": truth})
