"""VizWiz-VQA in its official annotation files, scored with VQA accuracy over the ten answers.

The files have no question ids: an item's id is its position in the file, and predictions.json names the image,
`[{image, answer}]`, the challenge's own format. Answers have no answer_id; the metric compares them by position,
and "unanswerable" is an ordinary answer.
"""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evalrunner.datasets import index
from evalrunner.datasets.base import Item, load_json, resolve
from evalrunner.datasets.vqa_base import VQADataset, check_answers, demo_answer, demo_items
from evalrunner.datasets.vqav2 import vqa_sources
from evalrunner.errors import UserError
from evalrunner.registry import register


@register("dataset", "vizwiz")
class VizWiz(VQADataset):
    def __init__(self, cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> None:
        super().__init__(cfg)
        self.cfg, self.data_root = cfg, data_root
        self._test, self._demos = index.load(self, cfg, data_root, index_dir)

    def sources(self) -> list[Path]:
        return vqa_sources(self.cfg, self.data_root, "test_annotations", "demo_annotations")

    def parse(self) -> tuple[list[Item], list[Item]]:
        image_ids: dict[str, int] = {}  # file name -> a number, distinct across the splits
        test = self._load(image_ids, "test_annotations", "test_image_dir")
        demos = self._load(image_ids, "demo_annotations", "demo_image_dir")
        return test, demo_items(demos, "dataset.demo_annotations", self.cfg.demo_annotations)

    def _load(self, image_ids: dict[str, int], key: str, images_key: str) -> list[Item]:
        cfg, data_root = self.cfg, self.data_root
        path = resolve(data_root, f"dataset.{key}", cfg[key])
        doc = load_json(path, f"dataset.{key}")
        if not isinstance(doc, list):
            raise UserError(f"dataset.{key}: {path} is not a VizWiz annotations file (a list of questions); "
                            f"point dataset.{key} at Annotations/<split>.json")
        image_dir = resolve(data_root, f"dataset.{images_key}", cfg[images_key])
        items = []
        try:
            for i, entry in enumerate(doc):
                humans = tuple(a["answer"] for a in entry.get("answers", ()))
                image_id = image_ids.setdefault(entry["image"], len(image_ids))
                items.append(Item(id=i, image_id=image_id, image_path=str(image_dir / entry["image"]),
                                  question=entry["question"], answer=demo_answer(humans, cfg.demo_answer),
                                  references=humans))
        except (KeyError, TypeError, AttributeError) as e:
            raise UserError(f"dataset.{key}: an entry in {path} lacks {e}; it must be a VizWiz annotations file "
                            "(Annotations/<split>.json)") from None
        check_answers(items, f"dataset.{key}", path)
        return items

    def record(self, item_id: int, text: str) -> dict[str, Any]:
        return {"image": Path(self._test[item_id].image_path).name, "answer": text}  # an id is its position
