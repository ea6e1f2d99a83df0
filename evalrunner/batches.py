"""Batches formed from the whole test set, the same way for any number of ranks, then dealt whole to the ranks.

A model's output can depend on its batch (padding changes the floating-point sums), so every item must sit in the
same batch, with the same neighbours, on 1 or 64 ranks, and after a resume. Batches are cut from the test items in
one global order and never re-cut: a resumed job skips the batches whose items are all done and runs a partly done
batch again whole.
"""

from collections.abc import Sequence

from evalrunner.datasets.base import Item


def form(items: Sequence[Item], batch_size: int, sort_keys: Sequence[int] | None = None) -> list[list[Item]]:
    """Consecutive batches of `batch_size`, in the order of `sort_keys` (stable: ties keep the test order)."""
    order = list(range(len(items)))
    if sort_keys is not None:
        order.sort(key=sort_keys.__getitem__)
    return [[items[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]


def deal(batches: Sequence[list[Item]], done: set[int], rank: int, world: int,
         lockstep: bool = False) -> tuple[list[list[Item]], int]:
    """This rank's share of the batches that still have an item without a prediction, and how many of them are its
    own. With `lockstep`, a rank with one batch fewer than the others is given a copy of another's batch to run
    and discard, so that every rank makes the same number of calls."""
    pending = [b for b in batches if not all(it.id in done for it in b)]
    mine = pending[rank::world]
    own = len(mine)
    if lockstep and own < -(-len(pending) // world):
        mine.append(pending[0])
    return mine, own
