"""OK-VQA v1.1 in its VQA-format question/annotation files on COCO images; stemmed predictions, VQA accuracy.

v1.1's human answers are stemmed already (`answer`; the annotators' text is `raw_answer`), so each prediction is
stemmed the same way (evalrunner.metrics.okvqa_stem, OpenFlamingo's stemmer) before it is saved and scored.
"""

from pathlib import Path

from omegaconf import DictConfig

from evalrunner.datasets.vqa_base import VQADataset
from evalrunner.datasets.vqav2 import load_vqa_files
from evalrunner.metrics import okvqa_stem
from evalrunner.registry import register


@register("dataset", "okvqa")
class OKVQA(VQADataset):
    def __init__(self, cfg: DictConfig, data_root: Path) -> None:
        super().__init__(cfg)
        okvqa_stem.check_resources()  # before any generation: NLTK data cannot be fetched mid-job
        self._test = load_vqa_files(cfg, data_root, "test_questions", "test_annotations", "test_images", "OK-VQA")
        self._demos = load_vqa_files(cfg, data_root, "demo_questions", "demo_annotations", "demo_images", "OK-VQA")

    def postprocess(self, text: str) -> str:
        return okvqa_stem.stem(super().postprocess(text))
