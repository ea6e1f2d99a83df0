"""Nearest-demo baseline: copy the answer or caption of the demo most like the test item.

It needs no weights and is deterministic, so its scores rise with shots (more demos, closer neighbours). It reads the
examples, not a prompt: its requests come in the bare form (each turn holds an image, a question, an answer).
"""

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image

from evalrunner.images import open_rgb
from evalrunner.models import reuse
from evalrunner.models.base import Backend
from evalrunner.prompts import BARE, PromptStyle
from evalrunner.registry import register
from evalrunner.requests import Image as ImagePart
from evalrunner.requests import LogLikelihoods, RankRequest, Request, Text, Turn

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


@dataclass(frozen=True)
class Example:
    """One turn pair of a bare prompt: what the baseline compares."""

    image_path: str  # "" for a demo shown as text only
    question: str
    answer: str = ""


def examples(turns: Sequence[Turn]) -> tuple[list[Example], Example]:
    """The demos and the query of a bare prompt's turns."""

    def read(user: Turn, answer: str = "") -> Example:
        image = next((p.path for p in user.parts if isinstance(p, ImagePart)), "")
        return Example(image, "".join(p.text for p in user.parts if isinstance(p, Text)), answer)

    demos = [read(turns[i], "".join(p.text for p in turns[i + 1].parts if isinstance(p, Text)))
             for i in range(0, len(turns) - 1, 2)]
    return demos, read(turns[-1])


@register("model", "nearest")
class NearestDemo(Backend):
    batch_invariant = True  # each item is answered on its own: batch_size only changes the speed
    ranks = True
    prompt_style = PromptStyle(BARE)

    def __init__(self, cfg: DictConfig, device: torch.device, max_images: int) -> None:
        self.latency_s = float(cfg.latency_s)
        self.fallback_answer, self.fallback_caption = str(cfg.fallback_answer), str(cfg.fallback_caption)
        self.min_question_similarity = float(cfg.min_question_similarity)
        self.thumbnails = reuse.shared("nearest", {}, device, Thumbnails)

    def prepare(self, requests: Sequence[Request]) -> Any:
        batch = []
        for r in requests:
            demos, query = examples(r.prompt.turns)
            # Text-only demos (OpenFlamingo's zero-shot) have no image to compare: the baseline answers as with none.
            demos = [d for d in demos if d.image_path]
            feat = self.thumbnails(query.image_path)
            batch.append((query, demos, feat, [self.thumbnails(d.image_path) for d in demos],
                          r.candidates if isinstance(r, RankRequest) else ()))
        return batch

    def generate(self, batch: Any) -> list[str]:
        if self.latency_s:
            time.sleep(self.latency_s)
        return [self._answer(query, demos, feat, demo_feats) for query, demos, feat, demo_feats, _ in batch]

    def _answer(self, item: Example, demos: list[Example], feat: np.ndarray, demo_feats: list[np.ndarray]) -> str:
        is_vqa = bool(item.question)  # a caption's query has no question
        if not demos:
            return self.fallback_answer if is_vqa else self.fallback_caption
        distance = [float(np.square(feat - f).sum()) for f in demo_feats]
        if is_vqa:
            # The question decides what kind of answer fits; the image picks among demos asking alike.
            sims = [round(question_similarity(item.question, d.question), 6) for d in demos]
            best = max(range(len(demos)), key=lambda i: (sims[i], -distance[i], -i))
            if sims[best] < self.min_question_similarity:
                return self.fallback_answer  # no demo asks anything alike: its answer would be a guess
        else:
            best = min(range(len(demos)), key=lambda i: (distance[i], i))
        return demos[best].answer

    def rank(self, batch: Any) -> LogLikelihoods:
        if self.latency_s:
            time.sleep(self.latency_s)
        count = len(batch[0][4]) if batch else 0
        scores = np.array([self._scores(*entry) for entry in batch], dtype=np.float64).reshape(len(batch), count)
        return LogLikelihoods(mean=scores)  # a candidate counts as one token

    def _scores(self, item: Example, demos: list[Example], feat: np.ndarray, demo_feats: list[np.ndarray],
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
