"""Ranking: the backend scores a dataset's fixed candidates as continuations of each prompt; the dataset decides.

A ranking dataset has `candidates` (the texts to score) and `decide(mean)`, which turns one item's per-token mean
log-likelihoods into a JSON-serialisable prediction (top-5 names, a probability). The prediction travels as its
JSON text, so partial files, the gather and resume treat it as any generated text.
"""

import json
from collections.abc import Callable
from typing import Any

from evalrunner.datasets.base import Dataset, Item
from evalrunner.errors import UserError
from evalrunner.models.base import Backend


def encode(prediction: Any) -> str:
    return json.dumps(prediction, separators=(",", ":"))


def predictor(dataset: Dataset, backend: Backend, model_name: str) -> Callable[[list[Item], Any], list[str]]:
    if not backend.ranks:
        raise UserError(f"model.name={model_name}: dataset {type(dataset).__name__} ranks candidates by likelihood, "
                        "and this model has no rank(); use model=hf or model=nearest")
    count = len(dataset.candidates)
    decide = dataset.decide

    def predict(items: list[Item], batch: Any) -> list[str]:
        scored = backend.rank(batch)
        if scored.mean.shape != (len(items), count):
            raise RuntimeError(f"model ranked {scored.mean.shape} (items, candidates) for {(len(items), count)}")
        return [encode(decide(row)) for row in scored.mean]

    return predict
