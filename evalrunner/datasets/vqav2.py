"""VQAv2 in the official question/annotation files, scored with VQA accuracy."""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evalrunner.datasets.base import Item
from evalrunner.datasets.entries import expect_list, integer, items_from, load_json
from evalrunner.datasets.vqa_base import VQADataset, demo_answer
from evalrunner.errors import UserError
from evalrunner.registry import register

SHAPE = "{{question_id, image_id, question}} questions and {{question_id, answers}} annotations, as in the {kind} files"


def load_vqa_files(cfg: DictConfig, paths: dict[str, Path], questions_key: str, annotations_key: str,
                   images_key: str, kind: str = "VQAv2") -> list[Item]:
    """Items from a VQA-format questions file and its annotations file (null = a test split without answers)."""
    qpath, apath = paths[questions_key], paths.get(annotations_key)
    qkey, akey = f"dataset.{questions_key}", f"dataset.{annotations_key}"
    questions = expect_list(load_json(qpath, qkey), "questions", qpath, qkey, "a VQA questions file")
    shape = SHAPE.format(kind=kind)
    by_qid: dict[int, dict[str, Any]] = {}
    if apath is not None:
        annotations = expect_list(load_json(apath, akey), "annotations", apath, akey, "a VQA annotations file")

        def annotated(a: dict[str, Any]) -> Item:
            by_qid[integer(a["question_id"])] = a
            return Item(id=integer(a["question_id"]), image_id=0, image_path="")

        items_from(enumerate(annotations), annotated, akey, apath, shape, id_name="question_id")
    pattern = str(paths[images_key])

    def question(q: dict[str, Any]) -> Item:
        qid = integer(q["question_id"])
        ann = by_qid.get(qid)
        if ann is None and apath is not None:
            raise UserError(f"{akey}: {apath} has no annotation for question_id {qid} of {qpath}; "
                            "use the matching questions/annotations pair")
        humans = tuple(str(a["answer"]) for a in ann["answers"]) if ann else ()
        answer = demo_answer(humans, cfg.demo_answer, ann.get("multiple_choice_answer")) if ann else ""
        image_id = integer(q["image_id"])
        return Item(id=qid, image_id=image_id, image_path=pattern.format(image_id=image_id),
                    question=str(q["question"]), answer=answer, references=humans)

    return items_from(enumerate(questions), question, qkey, qpath, shape, id_name="question_id")


class VQAFiles(VQADataset):
    """A dataset in VQAv2's question/annotation format, for the test split and the demo split."""

    format_name = "VQAv2"
    files = ("test_questions", "test_annotations", "demo_questions", "demo_annotations")
    folders = ("test_images", "demo_images")

    def parse(self) -> tuple[list[Item], list[Item]]:
        keys = (("test_questions", "test_annotations", "test_images"),
                ("demo_questions", "demo_annotations", "demo_images"))
        test, demos = (load_vqa_files(self.cfg, self.paths, *k, kind=self.format_name) for k in keys)
        return test, demos


@register("dataset", "vqav2")
class VQAv2(VQAFiles):
    format_name = "VQAv2"
