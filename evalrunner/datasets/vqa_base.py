"""What the VQA datasets share: the variant check, demo answers, post-processing and scoring.

A test split without public answers (VQAv2 test-dev, VizWiz test, TextVQA test) has items without references;
its score is None and its predictions.json is the file the challenge server takes.
"""

import re
from collections import Counter
from collections.abc import Mapping, Sequence

from omegaconf import DictConfig

from evalrunner.datasets.base import Dataset, Item, Score
from evalrunner.errors import UserError
from evalrunner.metrics.vqa import VARIANTS, vqa_scores

_CUT = re.compile("Question|Answer|Short")
DEMO_ANSWERS = ("majority", "first")


def demo_answer(humans: Sequence[str], mode: str, majority: str | None = None) -> str:
    """A demo's target: the file's majority answer (else the most frequent), or the first annotator's (OpenFlamingo)."""
    if not humans:
        return majority or ""
    if mode == "first":
        return humans[0]
    return majority if majority is not None else Counter(humans).most_common(1)[0][0]


def check_answers(items: Sequence[Item], key: str, path: object) -> None:
    """A split is answered throughout or not at all; a mix is a damaged file."""
    answered = sum(1 for it in items if it.references)
    if 0 < answered < len(items):
        raise UserError(f"{key}: {path} has human answers for {answered} of {len(items)} questions; "
                        "use the official file, answered throughout (val) or not at all (test)")


def demo_items(items: list[Item], key: str, path: object) -> list[Item]:
    if items and not items[0].references:
        raise UserError(f"{key}: {path} has no human answers, and demos need them; point {key} at the train file")
    return items


def check_variant(cfg: DictConfig) -> str:
    if cfg.vqa_variant not in VARIANTS:
        raise UserError(f"dataset.vqa_variant={cfg.vqa_variant!r}: choose {', '.join(VARIANTS)}")
    return str(cfg.vqa_variant)


class VQADataset(Dataset):
    task = "vqa"
    id_key = "question_id"
    text_key = "answer"
    metric = "VQA accuracy"

    def configure(self, cfg: DictConfig) -> None:
        self.variant = check_variant(cfg)
        if cfg.demo_answer not in DEMO_ANSWERS:
            raise UserError(f"dataset.demo_answer={cfg.demo_answer!r}: choose {' or '.join(DEMO_ANSWERS)}")
        self.demo_mode = cfg.demo_answer

    def postprocess(self, text: str) -> str:
        return _CUT.split(text, 1)[0].split(", ", 1)[0].strip()

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        if not any(it.references for it in items):
            return Score(None)  # no public answers: predictions.json is the submission
        scores = vqa_scores(predictions, {it.id: it.references for it in items}, variant=self.variant)
        # vqa_accuracy's arithmetic, so the job's score stays the metric's to the last bit
        return Score(100 * sum(scores) / len(scores), {i: 100 * s for i, s in zip(predictions, scores)})
