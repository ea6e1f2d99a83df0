"""Class-conditional demos (`demo_selection=class_conditional`), for classification: each test item's demos come from
its own class and `num_classes_in_demos - 1` others, the shots split across them (the true class gets any remainder
first). The classes, the demos of each class and their prompt order are each drawn with their own random.Random
keyed by (seed, trial, item id), so they don't depend on batching or ranks; the item's own image is never a demo.

An item's class is its label (a demo's `answer`, a test item's first reference): this protocol shows the model
examples of the right answer on purpose, as Flamingo-style class-conditional evaluation does.
"""

import random
from collections.abc import Sequence

from evalrunner.datasets.base import Item
from evalrunner.errors import UserError


def label(item: Item) -> str:
    return item.answer or (item.references[0] if item.references else "")


def split_shots(shots: int, classes: int) -> list[int]:
    """How many demos each chosen class gets, the true class first."""
    base, extra = divmod(shots, classes)
    return [base + (i < extra) for i in range(classes)]


class ClassConditionalSampler:
    def __init__(self, pool: Sequence[Item], shots: int, num_classes: int, seed: int, trial: int) -> None:
        if num_classes < 1:
            raise UserError(f"num_classes_in_demos={num_classes}: use 1 or more (the true class plus others)")
        if shots and num_classes > shots:
            raise UserError(f"num_classes_in_demos={num_classes} is more than shots={shots}: every class shown "
                            "needs a demo; lower num_classes_in_demos")
        self.by_class: dict[str, list[Item]] = {}
        for it in pool:
            self.by_class.setdefault(label(it), []).append(it)
        self.by_class.pop("", None)
        if len(self.by_class) < num_classes:
            raise UserError(f"num_classes_in_demos={num_classes}: the demo pool has only {len(self.by_class)} "
                            "classes")
        self.classes = sorted(self.by_class)
        self.shots, self.num_classes, self.seed, self.trial = shots, num_classes, seed, trial

    def __call__(self, item: Item) -> list[Item]:
        if self.shots == 0:
            return []
        own = label(item)
        if own not in self.by_class:
            raise UserError(f"demo_selection=class_conditional: no demo of class {own!r} (item {item.id}) in the "
                            "demo pool; raise query_set_size or use demo_selection=random")
        key = f"{self.seed}/{self.trial}/{item.id}"
        others = [c for c in self.classes if c != own]
        chosen = [own, *random.Random(f"{key}/classes").sample(others, self.num_classes - 1)]
        demos: list[Item] = []
        for name, count in zip(chosen, split_shots(self.shots, self.num_classes)):
            candidates = sorted((d for d in self.by_class[name] if d.image_id != item.image_id), key=lambda d: d.id)
            if len(candidates) < count:
                raise UserError(f"class {name!r} has {len(candidates)} demos other than item {item.id}, fewer than "
                                f"its {count}; lower shots or raise query_set_size")
            demos += random.Random(f"{key}/{name}").sample(candidates, count)
        random.Random(f"{key}/order").shuffle(demos)
        return demos
