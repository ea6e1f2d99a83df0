"""Nearest-demo baseline: copy the answer or caption of the demo most like the test item.

It needs no weights and is deterministic, so its scores rise with shots (more demos, closer neighbours).
"""

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image

from evalrunner.datasets import task_of
from evalrunner.datasets.base import Item
from evalrunner.images import open_rgb
from evalrunner.models import reuse
from evalrunner.models.base import LogLikelihoods
from evalrunner.registry import register

_WORD = re.compile(r"[a-z0-9]+")
UNSEEN = -1e6  # the rank score of a candidate that no demo answered
QUESTION_WEIGHT = 10.0  # rank: a demo asking something else is this much farther, in squared thumbnail distance


def image_features(path: str) -> np.ndarray:
    """A tiny colour thumbnail: enough to tell which demo image looks most like the test image."""
    thumb = open_rgb(path).resize((8, 8), Image.Resampling.BILINEAR)
    return np.asarray(thumb, dtype=np.float32).ravel() / 255.0


class Thumbnails:
    """Each image's thumbnail, decoded once: the baseline's only costly state, lent to the process's later jobs."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self.seen: dict[str, np.ndarray] = {}

    def __call__(self, path: str) -> np.ndarray:
        feat = self.seen.get(path)
        if feat is None:
            if len(self.seen) >= self.size:
                del self.seen[next(iter(self.seen))]  # the oldest
            feat = self.seen[path] = image_features(path)
        return feat


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def question_similarity(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / max(1, len(wa | wb))


@register("model", "nearest")
class NearestDemo:
    batch_invariant = True  # each item is answered on its own: batch_size only changes the speed
    def __init__(self, cfg: DictConfig, dataset_cfg: DictConfig, device: torch.device) -> None:
        self.latency_s = float(cfg.latency_s)
        self.is_vqa = task_of(dataset_cfg) == "vqa"
        self.fallback = cfg.fallback_answer if self.is_vqa else cfg.fallback_caption
        self.min_question_similarity = float(cfg.min_question_similarity)
        self.thumbnails = reuse.shared("nearest", {}, device, Thumbnails)

    def prepare(self, items: list[Item], demos: list[list[Item]]) -> Any:
        # Text-only demos (OpenFlamingo's zero-shot) have no image to compare: the baseline answers as with none.
        demos = [[d for d in ds if d.image_path] for ds in demos]
        return [(it, ds, self.thumbnails(it.image_path), [self.thumbnails(d.image_path) for d in ds])
                for it, ds in zip(items, demos)]

    def generate(self, batch: Any) -> list[str]:
        if self.latency_s:
            time.sleep(self.latency_s)
        return [self._answer(it, ds, feat, demo_feats) for it, ds, feat, demo_feats in batch]

    def _answer(self, item: Item, demos: list[Item], feat: np.ndarray, demo_feats: list[np.ndarray]) -> str:
        if not demos:
            return self.fallback
        distance = [float(np.square(feat - f).sum()) for f in demo_feats]
        if self.is_vqa:
            # The question decides what kind of answer fits; the image picks among demos asking alike.
            sims = [round(question_similarity(item.question, d.question), 6) for d in demos]
            best = max(range(len(demos)), key=lambda i: (sims[i], -distance[i], -i))
            if sims[best] < self.min_question_similarity:
                return self.fallback  # no demo asks anything alike: its answer would be a guess
        else:
            best = min(range(len(demos)), key=lambda i: (distance[i], i))
        return demos[best].answer

    def rank(self, batch: Any, candidates: Sequence[str]) -> LogLikelihoods:
        if self.latency_s:
            time.sleep(self.latency_s)
        scores = np.array([self._scores(it, ds, feat, demo_feats, candidates) for it, ds, feat, demo_feats in batch],
                          dtype=np.float64).reshape(len(batch), len(candidates))
        # A candidate counts as one token, so its mean is its total.
        return LogLikelihoods(total=scores, mean=scores.copy())

    def _scores(self, item: Item, demos: list[Item], feat: np.ndarray, demo_feats: list[np.ndarray],
                candidates: Sequence[str]) -> list[float]:
        """Per candidate: minus the distance to the nearest demo whose answer it is (UNSEEN if none is); with no
        demos every candidate ties."""
        column = {c: j for j, c in reversed(list(enumerate(candidates)))}
        scores = [UNSEEN] * len(candidates)
        for demo, f in zip(demos, demo_feats):
            j = column.get(demo.answer)
            if j is None:
                continue
            distance = float(np.square(feat - f).sum())
            if item.question:
                distance += QUESTION_WEIGHT * (1 - question_similarity(item.question, demo.question))
            scores[j] = max(scores[j], -distance)
        return scores
