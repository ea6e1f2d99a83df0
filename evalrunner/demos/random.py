"""Seeded selection of the test subset, the query set and each item's demos.

Every draw has its own random.Random keyed by strings of (seed, trial, item id), never the global RNG, so the
demos of an item do not depend on batch size, item order, or how many ranks share the work.
"""

import random
from collections import Counter
from collections.abc import Sequence

from evalrunner.datasets.base import Item
from evalrunner.errors import UserError


def select_test_items(items: Sequence[Item], num_samples: int | None, seed: int) -> list[Item]:
    """The whole test split, or a seeded subset that is the same for every shot count and trial."""
    if num_samples is None:
        return list(items)
    if num_samples < 1:
        raise UserError(f"num_samples={num_samples}: use a positive number, or null for the whole test split")
    if num_samples >= len(items):
        return list(items)
    chosen = random.Random(f"{seed}/test-subset").sample(range(len(items)), num_samples)
    return [items[i] for i in sorted(chosen)]  # in split order; only the chosen items are read


def query_set(pool: Sequence[Item], size: int, seed: int, trial: int) -> list[Item]:
    """The pool that demos are drawn from: `size` training examples, seeded per trial as OpenFlamingo does."""
    if size < 1:
        raise UserError(f"query_set_size={size}: use a positive number")
    if size >= len(pool):
        return list(pool)
    # Indices, not the pool: the same picks as sampling the list, without reading the items that aren't picked.
    return [pool[i] for i in random.Random(f"{seed}/{trial}/query-set").sample(range(len(pool)), size)]


class DemoSampler:
    def __init__(self, query: Sequence[Item], shots: int, seed: int, trial: int) -> None:
        if shots < 0:
            raise UserError(f"shots={shots}: use 0 or more")
        self.query = list(query)
        self.shots, self.seed, self.trial = shots, seed, trial
        self._per_image = Counter(it.image_id for it in self.query)
        if shots > len(self.query):
            raise UserError(f"shots={shots} is larger than the query set ({len(self.query)} demos); "
                            "lower shots or raise query_set_size")

    def __call__(self, item: Item) -> list[Item]:
        if self.shots == 0:
            return []
        same_image = self._per_image.get(item.image_id, 0)
        if len(self.query) - same_image < self.shots:
            raise UserError(f"shots={self.shots}: only {len(self.query) - same_image} demos of the query set show "
                            f"another image than item {item.id}; lower shots or raise query_set_size")
        # Extra draws cover the worst case of discarding every demo that shows the item's own image.
        rng = random.Random(f"{self.seed}/{self.trial}/{item.id}")
        picks = rng.sample(range(len(self.query)), min(len(self.query), self.shots + same_image))
        demos = [self.query[i] for i in picks if self.query[i].image_id != item.image_id]
        return demos[: self.shots]
