"""OK-VQA v1.1 in its VQA-format question/annotation files on COCO images; stemmed predictions, VQA accuracy.

v1.1's human answers are stemmed already (`answer`; the annotators' text is `raw_answer`), so each prediction is
stemmed the same way (evalrunner.metrics.okvqa_stem, OpenFlamingo's stemmer) before it is saved and scored.
"""

from omegaconf import DictConfig

from evalrunner.datasets.vqav2 import VQAFiles
from evalrunner.metrics import okvqa_stem
from evalrunner.registry import register


@register("dataset", "okvqa")
class OKVQA(VQAFiles):
    format_name = "OK-VQA"

    def configure(self, cfg: DictConfig) -> None:
        super().configure(cfg)
        okvqa_stem.check_resources()  # before any generation: NLTK data cannot be fetched mid-job

    def postprocess(self, text: str) -> str:
        return okvqa_stem.stem(super().postprocess(text))
