"""What the caption datasets share: the CIDEr tokenizer check, post-processing and scoring."""

import shutil
from collections.abc import Mapping, Sequence

from omegaconf import DictConfig

from evalrunner.datasets.base import Dataset, Item, Score
from evalrunner.errors import UserError
from evalrunner.metrics import cider_scores


class CaptionDataset(Dataset):
    task = "caption"
    id_key = "image_id"
    text_key = "caption"
    metric = "CIDEr"

    def configure(self, cfg: DictConfig) -> None:
        self.tokenizer = cfg.cider_tokenizer
        if self.tokenizer not in ("python", "java"):
            raise UserError(f"dataset.cider_tokenizer={self.tokenizer!r}: choose python or java")
        if self.tokenizer == "java" and shutil.which("java") is None:
            raise UserError("dataset.cider_tokenizer=java needs Java on PATH: install a JRE, "
                            "or set dataset.cider_tokenizer=python")

    def postprocess(self, text: str) -> str:
        return text.split("Output", 1)[0].replace('"', "").strip()

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        # The jar's tokens depend on the image order: it is the test items' (and predictions.json's).
        value, per_image = cider_scores(predictions, {it.id: it.references for it in items}, tokenizer=self.tokenizer)
        return Score(value, per_image)
