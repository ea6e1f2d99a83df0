"""VizWiz-VQA in its official annotation files, scored with VQA accuracy over the ten answers.

The files have no question ids: an item's id is its position in the file, and predictions.json names the image,
`[{image, answer}]`, the challenge's own format. Answers have no answer_id; the metric compares them by position,
and "unanswerable" is an ordinary answer.
"""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evalrunner.datasets.base import Item, load_json, resolve
from evalrunner.datasets.vqa_base import VQADataset, check_answers, demo_answer, demo_items
from evalrunner.errors import UserError
from evalrunner.registry import register


@register("dataset", "vizwiz")
class VizWiz(VQADataset):
    def __init__(self, cfg: DictConfig, data_root: Path) -> None:
        super().__init__(cfg)
        self._image_ids: dict[str, int] = {}  # file name -> a number, distinct across the splits
        self._test = self._load(cfg, data_root, "test_annotations", "test_image_dir")
        self._names = {it.id: Path(it.image_path).name for it in self._test}
        demos = self._load(cfg, data_root, "demo_annotations", "demo_image_dir")
        self._demos = demo_items(demos, "dataset.demo_annotations", cfg.demo_annotations)

    def _load(self, cfg: DictConfig, data_root: Path, key: str, images_key: str) -> list[Item]:
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
                image_id = self._image_ids.setdefault(entry["image"], len(self._image_ids))
                items.append(Item(id=i, image_id=image_id, image_path=str(image_dir / entry["image"]),
                                  question=entry["question"], answer=demo_answer(humans, cfg.demo_answer),
                                  references=humans))
        except (KeyError, TypeError, AttributeError) as e:
            raise UserError(f"dataset.{key}: an entry in {path} lacks {e}; it must be a VizWiz annotations file "
                            "(Annotations/<split>.json)") from None
        check_answers(items, f"dataset.{key}", path)
        return items

    def record(self, item_id: int, text: str) -> dict[str, Any]:
        return {"image": self._names[item_id], "answer": text}
