"""What every dataset gives the job: test items, a demo pool, post-processing and a score."""

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evalrunner.errors import UserError


@dataclass(frozen=True)
class Item:
    id: int  # the key of the prediction: question_id for VQA, image_id for captions
    image_id: int
    image_path: str  # "" for a demo shown as text only (OpenFlamingo's zero-shot, protocol.zero_shot_text_demos)
    question: str = ""  # VQA only
    answer: str = ""  # a demo's target text: the majority answer, or the first caption
    references: tuple[str, ...] = ()  # a test item's human answers or reference captions


@dataclass(frozen=True)
class Score:
    """What a dataset's metric gives the job."""

    value: float | None  # result.json's "score"; None for a split without public answers (a submission)
    per_item: dict[int, float] | None = None  # item id -> score on the same scale; their mean is `value`
    extra: dict[str, Any] = field(default_factory=dict)  # further result.json keys, e.g. "top5"
    report_data: dict[str, Any] | None = None  # what the report needs besides predictions (report_data.json)


class Dataset(Protocol):
    task: str  # "vqa" or "caption"
    id_key: str  # "question_id" or "image_id", the key in predictions.json
    text_key: str  # "answer" or "caption"
    metric: str

    def test_items(self) -> Sequence[Item]: ...  # a list, or the index's lazy sequence (datasets/index.py)

    def demo_pool(self) -> Sequence[Item]: ...

    def postprocess(self, text: str) -> str: ...

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score: ...


def prediction_records(dataset: Dataset, predictions: Mapping[int, str]) -> list[dict[str, Any]]:
    """predictions.json, by item id; a dataset whose challenge takes another format (VizWiz) defines `record`."""
    record = getattr(dataset, "record", None)
    if record is None:
        return [{dataset.id_key: i, dataset.text_key: p} for i, p in sorted(predictions.items())]
    return [record(i, p) for i, p in sorted(predictions.items())]


class Loaded:
    """The item accessors of a dataset that keeps its parsed (or index-mapped) items in _test and _demos."""

    _test: Sequence[Item] = ()
    _demos: Sequence[Item] = ()

    def test_items(self) -> Sequence[Item]:
        return self._test

    def demo_pool(self) -> Sequence[Item]:
        return self._demos


def resolve(data_root: Path, key: str, value: str) -> Path:
    """A dataset path from config: absolute, or relative to data_root."""
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else data_root / path


def load_json(path: Path, key: str) -> Any:
    if not path.is_file():
        raise UserError(f"{key}: file not found: {path}; set data_root or {key} to the file in the official layout")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{key}: malformed JSON in {path} ({e}); re-download or fix the file") from None


def expect_list(doc: Any, field: str, path: Path, key: str, kind: str) -> list[Any]:
    """The list under `field`, or an error saying the file is not the kind of file `key` wants."""
    if not isinstance(doc, dict) or not isinstance(doc.get(field), list):
        raise UserError(f"{key}: {path} is not {kind} (no '{field}' list); point {key} at the right file")
    return doc[field]


def check_images(items: Sequence[Item], key: str) -> None:
    missing = [it.image_path for it in items if not os.path.isfile(it.image_path)]
    if missing:
        raise UserError(
            f"{key}: {len(missing)} image(s) not found, first {missing[0]}; check data_root and {key}"
        )
