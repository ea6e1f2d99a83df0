"""TextVQA 0.5.1 in its official files, scored with TextVQA's m4c evaluator (vqa_variant=textvqa) by default."""

from typing import Any

from evalrunner.datasets.base import Item
from evalrunner.datasets.entries import expect_list, integer, items_from, load_json
from evalrunner.datasets.vqa_base import VQADataset, check_answers, demo_answer, demo_items
from evalrunner.registry import register

SHAPE = "TextVQA questions {question_id, question, image_id, answers}, as in TextVQA_0.5.1_<split>.json"

@register("dataset", "textvqa")
class TextVQA(VQADataset):
    files = ("test_file", "demo_file")
    folders = ("test_image_dir", "demo_image_dir")

    def parse(self) -> tuple[list[Item], list[Item]]:
        test = self._load("test_file", "test_image_dir")
        demos = self._load("demo_file", "demo_image_dir")
        return test, demo_items(demos, "dataset.demo_file", self.cfg.demo_file)

    def _load(self, key: str, images_key: str) -> list[Item]:
        path, image_dir = self.paths[key], self.paths[images_key]
        entries = expect_list(load_json(path, f"dataset.{key}"), "data", path, f"dataset.{key}",
                              "a TextVQA file (TextVQA_0.5.1_<split>.json)")

        def make(entry: dict[str, Any]) -> Item:
            humans = tuple(entry.get("answers", ()))
            # Image ids are hex strings; their value as a number keeps them distinct, as Item wants an int.
            return Item(id=integer(entry["question_id"]), image_id=int(entry["image_id"], 16),
                        image_path=str(image_dir / f"{entry['image_id']}.jpg"), question=entry["question"],
                        answer=demo_answer(humans, self.demo_mode), references=humans)

        items = items_from(enumerate(entries), make, f"dataset.{key}", path, SHAPE, id_name="question_id")
        check_answers(items, f"dataset.{key}", path)
        return items
