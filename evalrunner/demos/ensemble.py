"""Classification prompt ensembling (OpenFlamingo's --classification_prompt_ensembling): each item is ranked under
`min(dataset.ensemble_permutations, k!)` orders of its k demos and the per-token mean log-likelihoods are averaged.

OpenFlamingo shuffles with the global RNG seeded by seed + rank, so its orders depend on the hardware; here order p of
an item is drawn with random.Random keyed by (seed, trial, item id, p). The job's requester prepares one batch per
order, and the backend it ranks with answers with their average, so the rank task sees one batch and one backend.
"""

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from evalrunner.datasets.base import Item
from evalrunner.errors import UserError
from evalrunner.requests import LogLikelihoods


def orders(demos: list[Item], item_id: int, count: int, seed: int, trial: int) -> list[list[Item]]:
    """`count` seeded shuffles of one item's demos (repeats possible, as with OpenFlamingo's random.shuffle)."""
    return [random.Random(f"{seed}/{trial}/{item_id}/permutation/{p}").sample(demos, len(demos)) for p in range(count)]


class _Proxy:
    def __init__(self, inner: Any, permutations: int, seed: int, trial: int) -> None:
        self.inner, self.permutations, self.seed, self.trial = inner, permutations, seed, trial

    def __getattr__(self, name: str) -> Any:  # sort_key, prompt_hash, ranks, ...: the wrapped object's
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


class EnsembledRequester(_Proxy):
    def prepare(self, items: list[Item], demos: list[list[Item]]) -> list[Any]:
        per_item = [orders(ds, it.id, self.permutations, self.seed, self.trial)
                    for it, ds in zip(items, demos, strict=True)]
        return [self.inner.prepare(items, [o[p] for o in per_item]) for p in range(self.permutations)]


class EnsembledBackend(_Proxy):
    def rank(self, batches: Sequence[Any]) -> LogLikelihoods:
        return LogLikelihoods(mean=np.mean([self.inner.rank(b).mean for b in batches], axis=0))


def wrap(requester: Any, backend: Any, cfg: DictConfig, task: str) -> tuple[Any, Any]:
    """The requester and backend, ensembled when the dataset asks for it (classification only)."""
    value = OmegaConf.select(cfg, "dataset.ensemble_permutations", default=None)
    if value is None or int(value) <= 1:
        return requester, backend
    if task != "classification":
        raise UserError(f"dataset.ensemble_permutations={value}: only classification datasets rank prompts; "
                        "remove it")
    from evalrunner import protocol

    # As OpenFlamingo: min(N, k!) for k demos (0-shot's text demos count), the same for every item of the job
    count = min(int(value), math.factorial(protocol.demo_count(cfg)))
    if count <= 1:
        return requester, backend
    seed, trial = int(cfg.seed), int(cfg.trial)
    return EnsembledRequester(requester, count, seed, trial), EnsembledBackend(backend, count, seed, trial)
