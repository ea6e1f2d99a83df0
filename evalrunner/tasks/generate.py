"""Generation: the backend writes one text per item and the dataset post-processes it."""

from collections.abc import Callable
from typing import Any

from evalrunner.datasets.base import Dataset, Item
from evalrunner.models.base import Backend


def predictor(dataset: Dataset, backend: Backend, model_name: str) -> Callable[[list[Item], Any], list[str]]:
    def predict(items: list[Item], batch: Any) -> list[str]:
        raw = backend.generate(batch)
        if len(raw) != len(items):
            raise RuntimeError(f"model returned {len(raw)} texts for {len(items)} items")
        return [dataset.postprocess(t) for t in raw]

    return predict
