"""How a job turns a batch of prepared items into predictions: one module per task kind.

A dataset names its kind in `kind` ("generate" when it has none); `predictor` gives the job that kind's function
from (items, prepared batch) to one prediction string per item. Strings keep one mechanism for partial files,
the gather and resume; a kind whose predictions are structured encodes them as JSON.
"""

from collections.abc import Callable
from typing import Any

from evalrunner.datasets.base import Dataset, Item
from evalrunner.models import Model
from evalrunner.tasks import generate, rank

Predict = Callable[[list[Item], Any], list[str]]
_KINDS = {"generate": generate.predictor, "rank": rank.predictor}


def predictor(dataset: Dataset, model: Model, model_name: str) -> Predict:
    kind = getattr(dataset, "kind", "generate")
    if kind not in _KINDS:
        raise ValueError(f"dataset kind {kind!r} is not one of {sorted(_KINDS)}")
    return _KINDS[kind](dataset, model, model_name)
