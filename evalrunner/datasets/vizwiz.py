"""VizWiz-VQA in its official annotation files, scored with VQA accuracy over the ten answers.

The files have no question ids: an item's id is its position in the file, and predictions.json names the image,
`[{image, answer}]`, the challenge's own format. Answers have no answer_id; the metric compares them by position,
and "unanswerable" is an ordinary answer.
"""

from pathlib import Path
from typing import Any

from evalrunner.datasets.base import Item
from evalrunner.datasets.entries import items_from, load_json
from evalrunner.datasets.vqa_base import VQADataset, check_answers, demo_answer, demo_items
from evalrunner.errors import UserError
from evalrunner.registry import register

SHAPE = "VizWiz questions {image, question, answers}, as in Annotations/<split>.json"


@register("dataset", "vizwiz")
class VizWiz(VQADataset):
    files = ("test_annotations", "demo_annotations")
    folders = ("test_image_dir", "demo_image_dir")

    def parse(self) -> tuple[list[Item], list[Item]]:
        image_ids: dict[str, int] = {}  # file name -> a number, distinct across the splits
        test = self._load(image_ids, "test_annotations", "test_image_dir")
        demos = self._load(image_ids, "demo_annotations", "demo_image_dir")
        return test, demo_items(demos, "dataset.demo_annotations", self.cfg.demo_annotations)

    def _load(self, image_ids: dict[str, int], key: str, images_key: str) -> list[Item]:
        path, image_dir = self.paths[key], self.paths[images_key]
        doc = load_json(path, f"dataset.{key}")
        if not isinstance(doc, list):
            raise UserError(f"dataset.{key}: {path} is not a VizWiz annotations file (a list of questions); "
                            f"point dataset.{key} at Annotations/<split>.json")

        def make(entry: tuple[int, dict[str, Any]]) -> Item:
            i, q = entry
            humans = tuple(a["answer"] for a in q.get("answers", ()))
            image_id = image_ids.setdefault(q["image"], len(image_ids))
            return Item(id=i, image_id=image_id, image_path=str(image_dir / q["image"]), question=q["question"],
                        answer=demo_answer(humans, self.demo_mode), references=humans)

        items = items_from(((i, (i, q)) for i, q in enumerate(doc)), make, f"dataset.{key}", path, SHAPE)
        check_answers(items, f"dataset.{key}", path)
        return items

    def record(self, item_id: int, prediction: str) -> dict[str, Any]:
        return {"image": Path(self._test[item_id].image_path).name, "answer": prediction}  # an id is its position
