"""The model adapter protocol: a batch of test items with their demos in, generated texts or candidate scores out."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from omegaconf import DictConfig

from evalrunner.datasets.base import Item


@dataclass(frozen=True)
class LogLikelihoods:
    """What `rank` gives: arrays of shape (items, candidates), float64."""

    total: np.ndarray  # log P(candidate | prompt): the sum over the candidate's tokens
    mean: np.ndarray  # the same divided by the candidate's number of tokens (OpenFlamingo's normalize_length)


class Model(Protocol):
    """Built as `cls(model_cfg, dataset_cfg, device)` from the registry name in `model.name`.

    `prepare` does the CPU work (image decoding, preprocessing, tokenizing) and runs in DataLoader workers, so it
    must only use what survives a fork. `generate` returns one raw text per item; the job post-processes it.
    A model may also define `sort_key(item, demos) -> int`: the job then orders the whole test set by it before
    cutting it into batches (to cut padding), the same way for any number of ranks. A model whose output for an item
    does not depend on the other items of its batch sets `batch_invariant = True`; for any other model batch_size
    is part of the job's config, so a rerun never mixes two batchings.
    """

    def prepare(self, items: list[Item], demos: list[list[Item]]) -> Any: ...

    def generate(self, batch: Any) -> list[str]: ...

    def rank(self, batch: Any, candidates: Sequence[str]) -> LogLikelihoods:
        """Score every candidate as the continuation of every item's prompt (classification datasets only; a model
        that cannot may leave it out, and such a dataset then stops with an error saying so)."""
        ...


def build_model(model_cfg: DictConfig, dataset_cfg: DictConfig, device: torch.device) -> Model:
    from evalrunner.registry import lookup

    return lookup("model", model_cfg.name)(model_cfg, dataset_cfg, device)
