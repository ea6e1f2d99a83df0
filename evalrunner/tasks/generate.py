"""Generation: the model writes one text per item and the dataset post-processes it."""

from collections.abc import Callable
from typing import Any

from evalrunner.datasets.base import Dataset, Item
from evalrunner.models import Model


def predictor(dataset: Dataset, model: Model, model_name: str) -> Callable[[list[Item], Any], list[str]]:
    def predict(items: list[Item], batch: Any) -> list[str]:
        raw = model.generate(batch)
        if len(raw) != len(items):
            raise RuntimeError(f"model returned {len(raw)} texts for {len(items)} items")
        return [dataset.postprocess(t) for t in raw]

    return predict
