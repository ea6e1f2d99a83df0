"""Classification metrics: top-k accuracy over ranked names, and ROC-AUC over probabilities.

Pure functions, no I/O. ROC-AUC is the official HatefulMemes metric as scikit-learn's `roc_auc_score` computes it:
the trapezoidal area under the ROC curve's corner points, in float64 with the same operations in the same order, so
that published numbers and ours agree to the last bit (the test holds them equal). The exact value (the Mann-Whitney
statistic, ties counted half) differs from it only by rounding, below 1e-12.
"""

from collections.abc import Sequence

import numpy as np


def topk_hits(ranked: Sequence[Sequence[str]], labels: Sequence[str], k: int) -> list[bool]:
    """Per item: is its label among the first k names it ranked?"""
    if len(ranked) != len(labels):
        raise ValueError(f"{len(ranked)} rankings for {len(labels)} labels")
    if k < 1:
        raise ValueError(f"k={k}: use 1 or more")
    return [label in list(names[:k]) for names, label in zip(ranked, labels)]


def topk_accuracy(ranked: Sequence[Sequence[str]], labels: Sequence[str], k: int) -> float:
    """Top-k accuracy in percent."""
    hits = topk_hits(ranked, labels, k)
    if not hits:
        raise ValueError("top-k accuracy of no items")
    return 100 * sum(hits) / len(hits)


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve, as a fraction: the chance that a random positive scores above a random negative,
    a tie counting one half. Needs both classes present, as scikit-learn does."""
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"{s.size} scores for {y.size} labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        raise ValueError("ROC-AUC needs both positive and negative labels")
    # Corner points of the ROC curve: one per distinct score, highest first, with cumulative true and false positives.
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y = s[order], (y[order] == 1)
    last_of_value = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y, dtype=np.float64)[last_of_value]
    fps = 1 + last_of_value - tps
    # Points on a straight segment between their neighbours change no area but do change the float sum: drop them.
    if tps.size > 2:
        corner = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        tps, fps = tps[corner], fps[corner]
    tpr, fpr = np.r_[0, tps] / tps[-1], np.r_[0, fps] / fps[-1]
    return float(np.add.reduce(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
