"""Hateful Memes (the challenge's jsonl files), by ranking "no" and "yes" as the answer; scored with ROC-AUC x100."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from evalrunner.datasets import index
from evalrunner.datasets.base import Item, Loaded, Score, resolve
from evalrunner.errors import UserError
from evalrunner.metrics.classification import roc_auc
from evalrunner.registry import register

ANSWERS = ("no", "yes")  # OpenFlamingo's HM_CLASSNAMES: label 0 is "no", label 1 "yes" (hateful)


def load_jsonl(path: Path, key: str, image_dir: Path, need_labels: bool) -> list[Item]:
    if not path.is_file():
        raise UserError(f"{key}: file not found: {path}; set data_root or {key} to the challenge's jsonl file")
    items = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                label = rec.get("label")
                if label not in (0, 1) and (need_labels or label is not None):
                    raise KeyError("label (0 or 1)")
                # The file name comes from `img`, never from `id`: ids below 10000 are zero-padded in file names.
                items.append(Item(id=int(rec["id"]), image_id=int(rec["id"]), image_path=str(image_dir / rec["img"]),
                                  question=str(rec["text"]), answer="" if label is None else ANSWERS[label],
                                  references=() if label is None else (ANSWERS[label],)))
            except json.JSONDecodeError as e:
                raise UserError(f"{key}: line {number} of {path} is not JSON ({e}); re-download or fix it") from None
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise UserError(f"{key}: line {number} of {path} lacks {e}; lines must be "
                                "{id, img, label, text} as in the challenge's files") from None
    if not items:
        raise UserError(f"{key}: {path} has no lines; point {key} at the challenge's jsonl file")
    return items


@register("dataset", "hatefulmemes")
class HatefulMemes(Loaded):
    task = "classification"
    kind = "rank"
    id_key = "id"
    text_key = "proba"
    metric = "ROC-AUC"
    candidates = list(ANSWERS)

    def __init__(self, cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> None:
        self.image_dir = resolve(data_root, "dataset.image_dir", cfg.image_dir)
        self.demo_file = resolve(data_root, "dataset.demo_file", cfg.demo_file)
        self.test_file = resolve(data_root, "dataset.test_file", cfg.test_file)
        self.test_file_value = cfg.test_file
        self._test, self._demos = index.load(self, cfg, data_root, index_dir)
        self.submission = not self._test[0].references  # a split without labels: predictions.json is submitted

    def sources(self) -> list[Path]:
        return [self.demo_file, self.test_file]

    def parse(self) -> tuple[list[Item], list[Item]]:
        demos = load_jsonl(self.demo_file, "dataset.demo_file", self.image_dir, need_labels=True)
        test = load_jsonl(self.test_file, "dataset.test_file", self.image_dir, need_labels=False)
        if len({bool(it.references) for it in test}) > 1:
            raise UserError(f"dataset.test_file: {self.test_file_value} labels some lines and not others; "
                            "use a file with labels for all (dev_seen) or none (a test split)")
        return test, demos

    def postprocess(self, text: str) -> str:
        return text

    def decide(self, mean: np.ndarray) -> float:
        """P(hateful): the softmax over the two length-normalised log-likelihoods, as OpenFlamingo."""
        with np.errstate(over="ignore"):  # exp overflows to inf for a sure "no": P is then 0.0
            return float(1 / (1 + np.exp(mean[0] - mean[1])))  # the logistic form gives a tie exactly 0.5

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
