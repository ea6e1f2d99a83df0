"""VQAv2 in the official question/annotation files, scored with VQA accuracy."""

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig

from evalrunner.datasets.base import Item, Score, expect_list, load_json, resolve
from evalrunner.errors import UserError
from evalrunner.metrics.vqa import vqa_scores
from evalrunner.registry import register

_CUT = re.compile("Question|Answer|Short")


def _load(cfg: DictConfig, data_root: Path, questions_key: str, annotations_key: str, images_key: str) -> list[Item]:
    qpath = resolve(data_root, f"dataset.{questions_key}", cfg[questions_key])
    apath = resolve(data_root, f"dataset.{annotations_key}", cfg[annotations_key])
    questions = expect_list(load_json(qpath, f"dataset.{questions_key}"), "questions", qpath,
                            f"dataset.{questions_key}", "a VQA questions file")
    annotations = expect_list(load_json(apath, f"dataset.{annotations_key}"), "annotations", apath,
                              f"dataset.{annotations_key}", "a VQA annotations file")
    pattern = str(resolve(data_root, f"dataset.{images_key}", cfg[images_key]))
    try:
        by_qid = {int(a["question_id"]): a for a in annotations}
        items = []
        for q in questions:
            qid = int(q["question_id"])
            ann = by_qid.get(qid)
            if ann is None:
                raise UserError(f"dataset.{annotations_key}: {apath} has no annotation for question_id {qid} "
                                f"of {qpath}; use the matching questions/annotations pair")
            items.append(Item(id=qid, image_id=int(q["image_id"]),
                              image_path=pattern.format(image_id=int(q["image_id"])), question=q["question"],
                              answer=ann["multiple_choice_answer"],
                              references=tuple(a["answer"] for a in ann["answers"])))
    except (KeyError, TypeError) as e:
        raise UserError(f"dataset.{questions_key}/{annotations_key}: an entry in {qpath} or {apath} lacks {e}; "
                        "they must be VQAv2 questions and annotations files") from None
    return items


@register("dataset", "vqav2")
class VQAv2:
    task = "vqa"
    id_key = "question_id"
    text_key = "answer"
    metric = "VQA accuracy"

    def __init__(self, cfg: DictConfig, data_root: Path) -> None:
        if cfg.vqa_variant not in ("official", "vqa2016", "openflamingo"):
            raise UserError(f"dataset.vqa_variant={cfg.vqa_variant!r}: choose official, vqa2016 or openflamingo")
        self.variant = cfg.vqa_variant
        self._test = _load(cfg, data_root, "test_questions", "test_annotations", "test_images")
        self._demos = _load(cfg, data_root, "demo_questions", "demo_annotations", "demo_images")

    def test_items(self) -> list[Item]:
        return self._test

    def demo_pool(self) -> list[Item]:
        return self._demos

    def postprocess(self, text: str) -> str:
        return _CUT.split(text, 1)[0].split(", ", 1)[0].strip()

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        scores = vqa_scores(predictions, {it.id: it.references for it in items}, variant=self.variant)
        # vqa_accuracy's arithmetic, so the job's score stays the metric's to the last bit
        return Score(100 * sum(scores) / len(scores), {i: 100 * s for i, s in zip(predictions, scores)})
