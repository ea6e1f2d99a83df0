"""The values a dataset gives the job: one item (test or demo) and a score."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Item:
    id: int  # the key of the prediction: question_id for VQA, image_id for captions
    image_id: int
    image_path: str  # "" for a demo shown as text only (OpenFlamingo's zero-shot, protocol.zero_shot_text_demos)
    question: str = ""  # VQA only (Hateful Memes: the meme's text)
    answer: str = ""  # a demo's target text: the majority answer, or the first caption
    references: tuple[str, ...] = ()  # a test item's human answers or reference captions


@dataclass(frozen=True)
class Score:
    """What a dataset's metric gives the job."""

    value: float | None  # result.json's "score"; None for a split without public answers (a submission)
    per_item: dict[int, float] | None = None  # item id -> score on the same scale; their mean is `value`
    extra: dict[str, Any] = field(default_factory=dict)  # further result.json keys, e.g. "top5"
    report_data: dict[str, Any] | None = None  # what the report needs besides predictions (report_data.json)
