"""A dataset from one YAML file and two JSON-lines files, no Python: `format: jsonl` in conf/dataset/<name>.yaml.

The YAML needs no defaults list: this loader applies its schema (jsonl_config.py) first.
Records, one per line: vqa `{id, image, question, answers}`, caption `{id, image, captions}`, classification
`{id, image, label}` (`text` optional, the {question} of the prompt); an optional `answer` is what a demo shows
(default: the most frequent of `answers`, the first of `captions`, the label). `image` is relative to image_root.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from evalrunner.datasets.base import Dataset, Item, Score, resolve
from evalrunner.datasets.captions import CaptionDataset
from evalrunner.datasets.entries import integer, items_from, jsonl, lines
from evalrunner.datasets.hatefulmemes import p_second
from evalrunner.datasets.jsonl_config import METRIC_NAMES, checked, fill
from evalrunner.datasets.vqa_base import VQADataset, check_answers, check_variant, demo_answer, demo_items
from evalrunner.errors import UserError
from evalrunner.metrics.classification import roc_auc, topk_hits
from evalrunner.registry import register

TOP_K = 5


class JsonlFiles(Dataset):
    """Reading the two files; a subclass per task turns one record into an Item."""

    files = ("test_file", "demo_file")
    folders = ("image_root",)
    shape = ""

    def __init__(self, cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> None:
        self.metric_key = str(cfg.metric)
        self.metric = METRIC_NAMES[self.metric_key]
        super().__init__(cfg, data_root, index_dir)

    def parse(self) -> tuple[list[Item], list[Item]]:
        image_ids: dict[str, int] = {}  # image path -> a number, shared by the splits: demos of the same image differ
        test, demos = (self._load(k, image_ids) for k in self.files)
        return test, demo_items(demos, "dataset.demo_file", self.paths["demo_file"])

    def _load(self, key: str, image_ids: dict[str, int]) -> list[Item]:
        path = self.paths[key]

        def make(rec: dict[str, Any]) -> Item:
            if not isinstance(rec.get("image"), str):
                raise KeyError("image")
            image = str(self.paths["image_root"] / rec["image"])
            return self.item(rec, integer(rec["id"]), image_ids.setdefault(image, len(image_ids)), image)

        shape = f"{self.shape} for task {self.task}"
        items = items_from(jsonl(path, f"dataset.{key}", "a JSON-lines file"), make, f"dataset.{key}", path, shape,
                           where="line")
        check_answers(items, f"dataset.{key}", path)
        return items

    def item(self, rec: dict[str, Any], item_id: int, image_id: int, image: str) -> Item:
        raise NotImplementedError


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"'{field}' must be a list of strings")
    return tuple(value)


def _exact(predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
    per_item = {it.id: 100.0 * (predictions[it.id].strip().lower() in {r.strip().lower() for r in it.references})
                for it in items}
    return Score(sum(per_item.values()) / len(per_item), per_item)


class JsonlVQA(JsonlFiles, VQADataset):
    shape = '{"id", "image", "question", "answers": [...]}'

    def configure(self, cfg: DictConfig) -> None:
        self.variant = check_variant(cfg)

    def item(self, rec: dict[str, Any], item_id: int, image_id: int, image: str) -> Item:
        humans = _strings(rec.get("answers", []), "answers")
        answer = rec.get("answer", demo_answer(humans, "majority"))
        return Item(id=item_id, image_id=image_id, image_path=image, question=str(rec["question"]),
                    answer=str(answer), references=humans)

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        if self.metric_key == "exact_match" and any(it.references for it in items):
            return _exact(predictions, items)
        return super().score(predictions, items)


class JsonlCaptions(JsonlFiles, CaptionDataset):
    shape = '{"id", "image", "captions": [...]}'

    def item(self, rec: dict[str, Any], item_id: int, image_id: int, image: str) -> Item:
        captions = _strings(rec["captions"], "captions")
        if not captions:
            raise ValueError("'captions' is empty")
        return Item(id=item_id, image_id=item_id, image_path=image, answer=str(rec.get("answer", captions[0])),
                    references=captions)

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        return _exact(predictions, items) if self.metric_key == "exact_match" else super().score(predictions, items)


class JsonlClassification(JsonlFiles):
    task = "classification"
    shape = '{"id", "image", "label"} (optional "text"), label a candidate or its position'
    id_key = "id"

    def configure(self, cfg: DictConfig) -> None:
        value = cfg.candidates
        if isinstance(value, str):
            path = resolve(self.data_root, "dataset.candidates", value)
            self.paths["candidates"] = path
            self.candidates = [t.strip() for _, t in lines(path, "dataset.candidates", "a file of one name per line")]
        elif value is not None and all(isinstance(v, str) for v in value):
            self.candidates = [str(v) for v in value]
        if len(self.candidates) < 2 or len(set(self.candidates)) < len(self.candidates):
            raise UserError("dataset.candidates: a classification dataset needs two or more distinct class names, "
                            "as a list or a file of one name per line")
        if self.metric_key == "roc_auc" and len(self.candidates) != 2:
            raise UserError(f"dataset.metric=roc_auc needs exactly two candidates (negative, positive); "
                            f"dataset.candidates has {len(self.candidates)}")
        self.text_key = "proba" if self.metric_key == "roc_auc" else "class"

    def sources(self) -> list[Path]:
        return [*super().sources(), *([self.paths["candidates"]] if "candidates" in self.paths else [])]

    def item(self, rec: dict[str, Any], item_id: int, image_id: int, image: str) -> Item:
        label = rec["label"]
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(self.candidates):
            label = self.candidates[label]
        if label not in self.candidates:
            raise ValueError(f"label {label!r} is not one of dataset.candidates")
        return Item(id=item_id, image_id=image_id, image_path=image, question=str(rec.get("text", "")),
                    answer=str(rec.get("answer", label)), references=(label,))

    def decide(self, mean: np.ndarray) -> Any:
        if self.metric_key == "roc_auc":
            return p_second(mean)  # P(the second candidate), the positive class
        return [self.candidates[j] for j in np.argsort(-mean, kind="stable")[:TOP_K]]

    def record(self, item_id: int, prediction: str) -> dict[str, Any]:
        decided = json.loads(prediction)
        if self.metric_key == "roc_auc":
            return {"id": item_id, "proba": decided, "label": int(decided > 0.5)}
        return {"id": item_id, "class": decided[0], "top5": decided}

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        decided = [json.loads(predictions[it.id]) for it in items]
        if self.metric_key == "roc_auc":
            labels = [self.candidates.index(it.references[0]) for it in items]
            if len(set(labels)) < 2:
                raise UserError("dataset.test_file: ROC-AUC needs items of both classes among the test items; "
                                "use more of them (num_samples)")
            truth = {str(it.id): bool(label) for it, label in zip(items, labels)}  # the report's ROC-AUC resamples
            return Score(100 * roc_auc(decided, labels), report_data={"labels": truth})
        top1 = topk_hits(decided, [it.references[0] for it in items], 1)
        top5 = topk_hits(decided, [it.references[0] for it in items], TOP_K)
        return Score(100 * sum(top1) / len(items), {it.id: 100.0 * h for it, h in zip(items, top1)},
                     {"top5": 100 * sum(top5) / len(items)})


CLASSES: dict[str, type[JsonlFiles]] = {"vqa": JsonlVQA, "caption": JsonlCaptions,
                                        "classification": JsonlClassification}


@register("format", "jsonl")
def jsonl_dataset(cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> Dataset:
    merged = checked(cfg)
    fill(cfg, merged)
    return CLASSES[merged.task](cfg, data_root, index_dir)
