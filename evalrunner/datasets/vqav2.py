"""VQAv2 in the official question/annotation files, scored with VQA accuracy."""

from pathlib import Path

from omegaconf import DictConfig

from evalrunner.datasets import index
from evalrunner.datasets.base import Item, expect_list, load_json, resolve
from evalrunner.datasets.vqa_base import VQADataset, demo_answer
from evalrunner.errors import UserError
from evalrunner.registry import register


def load_vqa_files(cfg: DictConfig, data_root: Path, questions_key: str, annotations_key: str, images_key: str,
                   kind: str = "VQAv2") -> list[Item]:
    """Items from a VQA-format questions file and its annotations file (null = a test split without answers)."""
    qpath = resolve(data_root, f"dataset.{questions_key}", cfg[questions_key])
    questions = expect_list(load_json(qpath, f"dataset.{questions_key}"), "questions", qpath,
                            f"dataset.{questions_key}", "a VQA questions file")
    apath = None
    by_qid: dict[int, dict] = {}
    if cfg[annotations_key] is not None:
        apath = resolve(data_root, f"dataset.{annotations_key}", cfg[annotations_key])
        annotations = expect_list(load_json(apath, f"dataset.{annotations_key}"), "annotations", apath,
                                  f"dataset.{annotations_key}", "a VQA annotations file")
    pattern = str(resolve(data_root, f"dataset.{images_key}", cfg[images_key]))
    try:
        if apath is not None:
            by_qid = {int(a["question_id"]): a for a in annotations}
        items = []
        for q in questions:
            qid = int(q["question_id"])
            ann = by_qid.get(qid)
            if ann is None and apath is not None:
                raise UserError(f"dataset.{annotations_key}: {apath} has no annotation for question_id {qid} "
                                f"of {qpath}; use the matching questions/annotations pair")
            humans = tuple(a["answer"] for a in ann["answers"]) if ann else ()
            answer = demo_answer(humans, cfg.demo_answer, ann.get("multiple_choice_answer")) if ann else ""
            items.append(Item(id=qid, image_id=int(q["image_id"]),
                              image_path=pattern.format(image_id=int(q["image_id"])), question=q["question"],
                              answer=answer, references=humans))
    except (KeyError, TypeError) as e:
        raise UserError(f"dataset.{questions_key}/{annotations_key}: an entry in {qpath} or {apath} lacks {e}; "
                        f"they must be {kind} questions and annotations files") from None
    return items


def vqa_sources(cfg: DictConfig, data_root: Path, *keys: str) -> list[Path]:
    """The files named by `keys` (a null annotations file is no file)."""
    return [resolve(data_root, f"dataset.{k}", cfg[k]) for k in keys if cfg[k] is not None]


class VQAFiles(VQADataset):
    """A dataset in VQAv2's question/annotation format, for the test split and the demo split."""

    format_name = "VQAv2"

    def __init__(self, cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> None:
        super().__init__(cfg)
        self.cfg, self.data_root = cfg, data_root
        self._test, self._demos = index.load(self, cfg, data_root, index_dir)

    def sources(self) -> list[Path]:
        return vqa_sources(self.cfg, self.data_root, "test_questions", "test_annotations", "demo_questions",
                           "demo_annotations")

    def parse(self) -> tuple[list[Item], list[Item]]:
        keys = (("test_questions", "test_annotations", "test_images"),
                ("demo_questions", "demo_annotations", "demo_images"))
        test, demos = (load_vqa_files(self.cfg, self.data_root, *k, kind=self.format_name) for k in keys)
        return test, demos


@register("dataset", "vqav2")
class VQAv2(VQAFiles):
    format_name = "VQAv2"
