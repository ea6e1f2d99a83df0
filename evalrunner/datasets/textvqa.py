"""TextVQA 0.5.1 in its official files, scored with TextVQA's m4c evaluator (vqa_variant=textvqa) by default."""

from pathlib import Path

from omegaconf import DictConfig

from evalrunner.datasets import index
from evalrunner.datasets.base import Item, expect_list, load_json, resolve
from evalrunner.datasets.vqa_base import VQADataset, check_answers, demo_answer, demo_items
from evalrunner.datasets.vqav2 import vqa_sources
from evalrunner.errors import UserError
from evalrunner.registry import register


def _load(cfg: DictConfig, data_root: Path, key: str, images_key: str) -> list[Item]:
    path = resolve(data_root, f"dataset.{key}", cfg[key])
    entries = expect_list(load_json(path, f"dataset.{key}"), "data", path, f"dataset.{key}",
                          "a TextVQA file (TextVQA_0.5.1_<split>.json)")
    image_dir = resolve(data_root, f"dataset.{images_key}", cfg[images_key])
    items = []
    try:
        for entry in entries:
            humans = tuple(entry.get("answers", ()))
            # Image ids are hex strings; their value as a number keeps them distinct, as Item wants an int.
            items.append(Item(id=int(entry["question_id"]), image_id=int(entry["image_id"], 16),
                              image_path=str(image_dir / f"{entry['image_id']}.jpg"), question=entry["question"],
                              answer=demo_answer(humans, cfg.demo_answer), references=humans))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"dataset.{key}: an entry in {path} is not a TextVQA question "
                        f"({type(e).__name__}: {e}); it must be TextVQA_0.5.1_<split>.json") from None
    check_answers(items, f"dataset.{key}", path)
    return items


@register("dataset", "textvqa")
class TextVQA(VQADataset):
    def __init__(self, cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> None:
        super().__init__(cfg)
        self.cfg, self.data_root = cfg, data_root
        self._test, self._demos = index.load(self, cfg, data_root, index_dir)

    def sources(self) -> list[Path]:
        return vqa_sources(self.cfg, self.data_root, "test_file", "demo_file")

    def parse(self) -> tuple[list[Item], list[Item]]:
        test = _load(self.cfg, self.data_root, "test_file", "test_image_dir")
        demos = _load(self.cfg, self.data_root, "demo_file", "demo_image_dir")
        return test, demo_items(demos, "dataset.demo_file", self.cfg.demo_file)
