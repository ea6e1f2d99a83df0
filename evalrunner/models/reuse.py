"""The costly part of a model (weights, processor), loaded once per process and lent to the later jobs of a sweep.

One process runs several jobs when Hydra's basic launcher runs a sweep, or when `hydra.launcher.jobs_per_task` packs
several into one array element. A backend asks `shared()` for its costly part, keyed by the settings that part is
built from and the device; the backend around it is still built per job, so whatever it derives from the job (its
settings, the images per prompt) is the job's own. Only the last part asked for is held: a sweep over two
checkpoints must never keep both on one GPU.
"""

import gc
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from omegaconf import DictConfig

from evalrunner.models.base import Backend, build_model

T = TypeVar("T")


@dataclass
class Built:
    """How a job got its model: `reused` is True when every costly part it asked for was already loaded."""

    model: Backend
    seconds: float
    asked: list[bool] = field(default_factory=list)  # one entry per shared() call: True = served from the cache

    @property
    def reused(self) -> bool:
        return bool(self.asked) and all(self.asked)


_held: tuple[str, Any] | None = None  # (key, part) of the last part loaded
_asked: list[bool] | None = None  # the shared() calls of the build in progress
_enabled = False  # only a job's build() reuses: a model built directly (a test, a notebook) loads its own


def shared(kind: str, settings: dict[str, Any], device: torch.device, load: Callable[[], T]) -> T:
    """`load()`, or, inside `build(reuse=True)`, the part it returned earlier in this process for the same kind,
    settings and device."""
    global _held
    key = json.dumps([kind, settings, str(device)], sort_keys=True, default=str)
    if _enabled and _held is not None and _held[0] == key:
        _record(True)
        return _held[1]  # type: ignore[no-any-return]
    release()  # before loading: the old weights and the new ones must not share the GPU
    part = load()
    if _enabled:
        _held = (key, part)
    _record(False)
    return part


def _record(reused: bool) -> None:
    if _asked is not None:
        _asked.append(reused)


def release() -> None:
    """Drop the held part, so that its memory (host and GPU) is freed once the last adapter using it is gone."""
    global _held
    if _held is None:
        return
    _held = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def _building(enabled: bool) -> Iterator[list[bool]]:
    global _asked, _enabled
    asked: list[bool] = []
    saved = _asked, _enabled
    _asked, _enabled = asked, enabled
    try:
        yield asked
    finally:
        _asked, _enabled = saved


def build(model_cfg: DictConfig, device: torch.device, max_images: int, reuse: bool = True) -> Built:
    """The job's backend, around the costly parts already loaded in this process when `reuse` is on."""
    start = time.perf_counter()
    if not reuse:
        release()
    with _building(reuse) as asked:
        model = build_model(model_cfg, device, max_images)
    return Built(model, time.perf_counter() - start, asked)
