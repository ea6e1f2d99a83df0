"""Bootstrap intervals of a cell's mean over trials, resampling test items paired across the trials.

Demos are drawn per test item (seeded by seed, trial and item id), so the trials' scores of one item carry the
demo-draw noise. Drawing the same item indices in every trial keeps that noise and the item noise both in the
interval. Resamples are drawn in chunks of about `CHUNK` indices, so memory stays bounded at any size, and the
chunking does not change the draws: a generator fills a (m, n) block in the same order as m rows one by one.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from tqdm import tqdm

CHUNK = 1 << 20  # item indices drawn at once: 8 MB of int64, and as much for the gathered scores
LEVEL = 0.95


class Statistic(Protocol):
    @property
    def ids(self) -> np.ndarray:
        """(n,) the cell's test item ids, ascending: the axis that is resampled."""
        ...

    def resampled(self, idx: np.ndarray) -> np.ndarray:
        """The mean over trials for each row of idx (m, n), a resample of item positions."""
        ...


@dataclass(frozen=True)
class ItemMeans:
    """A metric with per-item scores (VQA accuracy, CIDEr, top-1): a trial's score is the mean of its items."""

    ids: np.ndarray
    scores: np.ndarray  # (trials, n); 0 where a trial lacks the item
    present: np.ndarray  # (trials, n) bool

    def __post_init__(self) -> None:
        # Every trial holds every item (the usual case): the mean over trials of item means is the item mean of
        # trial means, so one gather per resample does.
        object.__setattr__(self, "_trial_mean", self.scores.mean(axis=0) if self.present.all() else None)

    @classmethod
    def from_maps(cls, trials: Sequence[dict[int, float]]) -> "ItemMeans":
        ids = np.array(sorted(set().union(*trials)), dtype=np.int64)
        pos = {int(i): k for k, i in enumerate(ids)}
        scores = np.zeros((len(trials), len(ids)))
        present = np.zeros((len(trials), len(ids)), dtype=bool)
        for t, m in enumerate(trials):
            cols = np.fromiter((pos[i] for i in m), dtype=np.int64, count=len(m))
            scores[t, cols] = np.fromiter(m.values(), dtype=np.float64, count=len(m))
            present[t, cols] = True
        return cls(ids, scores, present)

    def resampled(self, idx: np.ndarray) -> np.ndarray:
        if self._trial_mean is not None:  # type: ignore[attr-defined]
            return self._trial_mean[idx].mean(axis=1)  # type: ignore[attr-defined]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = [s[idx].sum(axis=1) / p[idx].sum(axis=1) for s, p in zip(self.scores, self.present)]
        return _mean_of_defined(means)


@dataclass(frozen=True)
class RocAuc:
    """ROC-AUC x 100, which has no per-item form: it is recomputed from the resampled items' probabilities."""

    ids: np.ndarray
    proba: np.ndarray  # (trials, n)
    label: np.ndarray  # (trials, n) bool
    present: np.ndarray  # (trials, n) bool

    @classmethod
    def from_rows(cls, trials: Sequence[dict[int, tuple[float, bool]]]) -> "RocAuc":
        ids = np.array(sorted(set().union(*trials)), dtype=np.int64)
        pos = {int(i): k for k, i in enumerate(ids)}
        proba = np.zeros((len(trials), len(ids)))
        label = np.zeros((len(trials), len(ids)), dtype=bool)
        present = np.zeros((len(trials), len(ids)), dtype=bool)
        for t, m in enumerate(trials):
            for i, (p, y) in m.items():
                proba[t, pos[i]], label[t, pos[i]], present[t, pos[i]] = p, y, True
        return cls(ids, proba, label, present)

    def resampled(self, idx: np.ndarray) -> np.ndarray:
        m, n = idx.shape
        offsets = np.arange(m, dtype=np.int64)[:, None] * n
        counts = np.bincount((idx + offsets).ravel(), minlength=m * n).reshape(m, n)
        return _mean_of_defined([self._auc(counts, t) for t in range(len(self.proba))])

    def _auc(self, counts: np.ndarray, t: int) -> np.ndarray:
        """Weighted Mann-Whitney AUC in integers: P(positive above negative) + P(tie) / 2, each row a resample."""
        order = np.argsort(self.proba[t], kind="stable")
        p = self.proba[t][order]
        starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])  # tied probabilities form one group
        w = counts[:, order] * self.present[t][order]
        pos = np.add.reduceat(w * self.label[t][order], starts, axis=1)
        neg = np.add.reduceat(w * ~self.label[t][order], starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        twice = (pos * (2 * below + neg)).sum(axis=1)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pairs > 0, 100 * twice / (2 * pairs), np.nan)


def _mean_of_defined(per_trial: list[np.ndarray]) -> np.ndarray:
    """The mean over the trials whose statistic the resample defines (a trial may draw none of its items)."""
    a = np.array(per_trial)
    defined = ~np.isnan(a)
    with np.errstate(invalid="ignore"):
        return np.where(defined, a, 0).sum(axis=0) / defined.sum(axis=0)


def replicates(stats: Sequence[Statistic], resamples: int, rng: np.random.Generator,
               progress: tqdm | None = None) -> np.ndarray:
    """(len(stats), resamples): every statistic on the same resamples, which pairs them for a difference."""
    n = len(stats[0].ids)
    if any(not np.array_equal(s.ids, stats[0].ids) for s in stats):
        raise ValueError("paired statistics need the same test items")
    out = np.empty((len(stats), resamples))
    rows = max(1, CHUNK // max(n, 1))
    for start in range(0, resamples, rows):
        m = min(rows, resamples - start)
        idx = rng.integers(0, n, size=(m, n))
        for k, s in enumerate(stats):
            out[k, start : start + m] = s.resampled(idx)
        if progress is not None:
            progress.update(m)
    return out


def interval(reps: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of the replicates."""
    lo, hi = np.nanquantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
