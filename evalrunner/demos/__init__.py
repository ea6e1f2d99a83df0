"""Each test item's demos: seeded random draws from a query set (`random`), or retrieval by image similarity from the
whole demo split (`rices`). Either way a sampler maps a test item to its demos in prompt order."""

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from omegaconf import DictConfig

from evalrunner.datasets.base import Dataset, Item, check_images
from evalrunner.demos.random import DemoSampler, query_set, select_test_items
from evalrunner.distributed import Ranks
from evalrunner.errors import UserError

__all__ = ["DemoSampler", "Sampler", "build_sampler", "query_set", "record", "select_test_items"]
Sampler = Callable[[Item], list[Item]]
log = logging.getLogger("evalrunner")


def build_sampler(cfg: DictConfig, dataset: Dataset, items: Sequence[Item], data_root: Path, ranks: Ranks,
                  shots: int) -> Sampler:
    """The job's sampler of `shots` demos per item, chosen by `demo_selection`; the demo images are checked before
    any generation (not at cfg.shots=0, whose demos, if any, are shown as text)."""
    if cfg.demo_selection == "random":
        if cfg.get("num_classes_in_demos") is not None:
            raise UserError("num_classes_in_demos is set but demo_selection=random ignores it; use "
                            "demo_selection=class_conditional (or rices, to retrieve within the classes)")
        query = query_set(dataset.demo_pool(), cfg.query_set_size, cfg.seed, cfg.trial)
        sampler = DemoSampler(query, shots, cfg.seed, cfg.trial)
        check_images(query if cfg.shots else [], f"dataset ({cfg.dataset.name} demo images)")
        return sampler
    if cfg.demo_selection == "class_conditional":
        from evalrunner.demos.class_conditional import ClassConditionalSampler, num_classes

        query = query_set(dataset.demo_pool(), cfg.query_set_size, cfg.seed, cfg.trial)
        check_images(query if cfg.shots else [], f"dataset ({cfg.dataset.name} demo images)")
        return ClassConditionalSampler(query, shots, num_classes(cfg, dataset.task), cfg.seed, cfg.trial)
    if cfg.demo_selection == "rices":
        from evalrunner.demos import rices  # loads transformers only when asked for

        return rices.build(cfg, dataset, items, data_root, ranks, shots)
    raise UserError(f"demo_selection={cfg.demo_selection!r}: choose random, rices or class_conditional")


def record(sampler: Sampler, items: Sequence[Item]) -> dict[str, list[int]]:
    """demos.json: each test item's id -> its demos' ids in prompt order."""
    return {str(it.id): [d.id for d in sampler(it)] for it in items}
