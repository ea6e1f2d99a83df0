"""Class-conditional demos (`demo_selection=class_conditional`), for classification: each test item's demos come from
its own class and `num_classes_in_demos - 1` others, the shots split across them (the true class gets any remainder
first). The classes, the demos of each class and their prompt order are each drawn with their own random.Random
keyed by (seed, trial, item id), so they don't depend on batching or ranks; the item's own image is never a demo.

An item's class is its label (a demo's `answer`, a test item's first reference): this protocol shows the model
examples of the right answer on purpose, as Flamingo-style class-conditional evaluation does.
"""

import random
from collections.abc import Callable, Sequence

import numpy as np
from omegaconf import DictConfig

from evalrunner.datasets.base import Item
from evalrunner.errors import UserError


def num_classes(cfg: DictConfig, task: str) -> int:
    if task != "classification":
        raise UserError(f"num_classes_in_demos: dataset {cfg.dataset.name} has no classes; use it with imagenet "
                        "or hatefulmemes")
    value = cfg.get("num_classes_in_demos")
    if value is None:
        raise UserError("demo_selection=class_conditional needs num_classes_in_demos=N (the true class plus N-1 "
                        "others)")
    return int(value)


def label(item: Item) -> str:
    return item.answer or (item.references[0] if item.references else "")


def split_shots(shots: int, classes: int) -> list[int]:
    """How many demos each chosen class gets, the true class first."""
    base, extra = divmod(shots, classes)
    return [base + (i < extra) for i in range(classes)]


class ClassChooser:
    """Which classes an item's demos come from, and how many of each: the true class first, then the others."""

    def __init__(self, classes: Sequence[str], shots: int, num_classes: int, seed: int, trial: int) -> None:
        if num_classes < 1:
            raise UserError(f"num_classes_in_demos={num_classes}: use 1 or more (the true class plus others)")
        if shots and num_classes > shots:
            raise UserError(f"num_classes_in_demos={num_classes} is more than shots={shots}: every class shown "
                            "needs a demo; lower num_classes_in_demos")
        if len(classes) < num_classes:
            raise UserError(f"num_classes_in_demos={num_classes}: the demo pool has only {len(classes)} classes")
        self.classes = sorted(classes)
        self.shots, self.num_classes, self.seed, self.trial = shots, num_classes, seed, trial

    def plan(self, item: Item) -> list[tuple[str, int]]:
        own = label(item)
        if own not in self.classes:
            raise UserError(f"demo_selection=class_conditional: no demo of class {own!r} (item {item.id}) in the "
                            "demo pool; raise query_set_size or use demo_selection=random")
        others = [c for c in self.classes if c != own]
        rng = random.Random(f"{self.seed}/{self.trial}/{item.id}/classes")
        chosen = [own, *rng.sample(others, self.num_classes - 1)]
        return list(zip(chosen, split_shots(self.shots, self.num_classes)))


def _by_class(pool: Sequence[Item]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, it in enumerate(pool):
        if label(it):
            out.setdefault(label(it), []).append(i)
    return out


class ClassConditionalSampler:
    def __init__(self, pool: Sequence[Item], shots: int, num_classes: int, seed: int, trial: int) -> None:
        self.pool = list(pool)
        self.by_class = _by_class(self.pool)
        self.chooser = ClassChooser(list(self.by_class), shots, num_classes, seed, trial)
        self.shots, self.seed, self.trial = shots, seed, trial

    def __call__(self, item: Item) -> list[Item]:
        if self.shots == 0:
            return []
        key = f"{self.seed}/{self.trial}/{item.id}"
        demos: list[Item] = []
        for name, count in self.chooser.plan(item):
            members = [self.pool[i] for i in self.by_class[name]]
            candidates = sorted((d for d in members if d.image_id != item.image_id), key=lambda d: d.id)
            if len(candidates) < count:
                raise UserError(f"class {name!r} has {len(candidates)} demos other than item {item.id}, fewer than "
                                f"its {count}; lower shots or raise query_set_size")
            demos += random.Random(f"{key}/{name}").sample(candidates, count)
        random.Random(f"{key}/order").shuffle(demos)
        return demos


def rices_table(items: Sequence[Item], item_rows: np.ndarray, item_feats: np.ndarray, pool: Sequence[Item],
                pool_rows: np.ndarray, pool_feats: np.ndarray, shots: int, num_classes: int, seed: int,
                trial: int, select: Callable[..., dict[int, list[int]]]) -> dict[int, list[int]]:
    """The RICES variant (`demo_selection=rices` with num_classes_in_demos): each chosen class's demos are the most
    similar examples of that class, retrieved by RICES' `select`; the other classes come first and the true class
    last, each most similar last."""
    by_class = _by_class(pool)
    chooser = ClassChooser(list(by_class), shots, num_classes, seed, trial)
    plans = [chooser.plan(it) for it in items]
    groups: dict[tuple[str, int], list[int]] = {}
    for q, plan in enumerate(plans):
        for name, count in plan:
            groups.setdefault((name, count), []).append(q)
    picked: dict[tuple[int, str], list[int]] = {}
    for (name, count), qs in sorted(groups.items()):
        members = by_class[name]
        rows, inverse = np.unique(pool_rows[members], return_inverse=True)
        table = select([items[q] for q in qs], item_rows[qs], item_feats, [pool[i] for i in members],
                       inverse.astype(np.int64), pool_feats[rows], count)
        for q in qs:
            picked[(q, name)] = [members[i] for i in table[items[q].id]]
    return {it.id: [i for name, _ in plans[q][1:] + plans[q][:1] for i in picked[(q, name)]]
            for q, it in enumerate(items)}
