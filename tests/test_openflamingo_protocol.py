"""OpenFlamingo's classification protocol: prompt ensembling over seeded demo orders, and class-conditional demos."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
from helpers import cli, compose_cfg

from evalrunner.datasets.base import Item
from evalrunner.demos import ensemble
from evalrunner.demos.class_conditional import ClassChooser, ClassConditionalSampler, rices_table, split_shots
from evalrunner.demos.rices import select
from evalrunner.errors import UserError
from evalrunner.requests import LogLikelihoods


def _pool(classes: int = 4, per_class: int = 5) -> list[Item]:
    return [Item(id=c * 100 + i, image_id=c * 100 + i, image_path=f"/{c}/{i}.jpg", answer=f"class {c}")
            for c in range(classes) for i in range(per_class)]


def test_class_conditional_demos_show_the_true_class_and_the_asked_number_of_others_shots_split_across_them() -> None:
    pool = _pool()
    item = Item(id=7, image_id=7, image_path="/q.jpg", references=("class 2",))
    sampler = ClassConditionalSampler(pool, shots=5, num_classes=2, seed=1, trial=0)

    demos = sampler(item)

    counts = {name: sum(d.answer == name for d in demos) for name in {d.answer for d in demos}}
    assert len(demos) == 5 and counts["class 2"] == 3
    assert len(counts) == 2 and sorted(counts.values()) == [2, 3]
    assert split_shots(7, 3) == [3, 2, 2]


def test_class_conditional_demos_are_seeded_per_item_never_the_items_image_and_leave_the_global_rng_alone() -> None:
    pool = _pool()
    item = pool[3]  # a pool image as the query: it must not be its own demo
    random.seed(5)
    before = random.random()
    random.seed(5)

    first = ClassConditionalSampler(pool, 4, 2, seed=1, trial=0)(item)
    again = ClassConditionalSampler(list(reversed(pool)), 4, 2, seed=1, trial=0)(item)
    other_trial = ClassConditionalSampler(pool, 4, 2, seed=1, trial=1)(item)

    assert random.random() == before
    assert [d.id for d in first] == [d.id for d in again]  # the pool's order does not matter
    assert item.id not in {d.id for d in first}
    assert [d.id for d in first] != [d.id for d in other_trial]


def test_more_classes_than_shots_is_a_one_line_error_naming_num_classes_in_demos() -> None:
    with pytest.raises(UserError, match=r"num_classes_in_demos=3 is more than shots=2"):
        ClassConditionalSampler(_pool(), 2, 3, seed=1, trial=0)


def test_class_conditional_without_num_classes_in_demos_says_to_set_it(sample_root: Path) -> None:
    from evalrunner.demos import build_sampler
    from evalrunner.distributed import Ranks
    from evalrunner.registry import lookup

    cfg = compose_cfg(["dataset=imagenet", "demo_selection=class_conditional"])
    dataset = lookup("dataset", "imagenet")(cfg.dataset, sample_root)

    with pytest.raises(UserError, match=r"needs num_classes_in_demos=N"):
        build_sampler(cfg, dataset, list(dataset.test_items()), sample_root, Ranks.__new__(Ranks), 2)


def test_class_conditional_rices_takes_each_chosen_classs_most_similar_demos_with_the_true_class_last() -> None:
    rng = np.random.default_rng(0)
    pool = _pool(classes=3, per_class=6)
    pool_feats = rng.normal(size=(len(pool), 8)).astype(np.float32)
    pool_feats /= np.linalg.norm(pool_feats, axis=1, keepdims=True)
    items = [Item(id=1000 + q, image_id=1000 + q, image_path=f"/t{q}.jpg", references=(f"class {q % 3}",))
             for q in range(4)]
    item_feats = pool_feats[[0, 7, 13, 5]] + 0.01  # each item near one pool image

    table = rices_table(items, np.arange(4), item_feats, pool, np.arange(len(pool)), pool_feats, shots=3,
                        num_classes=2, seed=1, trial=0, select=select)

    for q, it in enumerate(items):
        plan = ClassChooser([f"class {c}" for c in range(3)], 3, 2, 1, 0).plan(it)
        expected: list[int] = []
        for name, count in plan[1:] + plan[:1]:
            members = [i for i, d in enumerate(pool) if d.answer == name]
            sims = pool_feats[members] @ item_feats[q]
            expected += [members[i] for i in np.argsort(-sims, kind="stable")[:count]][::-1]
        assert table[it.id] == expected
        assert pool[table[it.id][-1]].answer == it.references[0]


def test_num_classes_in_demos_with_random_demos_is_an_error_naming_the_choice(sample_root: Path) -> None:
    from evalrunner.demos import build_sampler
    from evalrunner.registry import lookup

    cfg = compose_cfg(["dataset=imagenet", "num_classes_in_demos=2"])
    dataset = lookup("dataset", "imagenet")(cfg.dataset, sample_root)

    with pytest.raises(UserError, match=r"use demo_selection=class_conditional"):
        build_sampler(cfg, dataset, [], sample_root, None, 2)  # type: ignore[arg-type]


class _OrderModel:
    """Requester and backend at once: scores candidate j of an item as the id of the demo shown at position j."""

    ranks = True

    def prepare(self, items: list[Item], demos: list[list[Item]]) -> list[list[int]]:
        return [[d.id for d in ds] for ds in demos]

    def rank(self, batch: list[list[int]]) -> LogLikelihoods:
        return LogLikelihoods(mean=np.array(batch, dtype=float))


def test_ensembling_averages_over_min_n_and_shots_factorial_seeded_orders_that_do_not_depend_on_the_batch() -> None:
    cfg = compose_cfg(["dataset=imagenet", "shots=3", "dataset.ensemble_permutations=4", "seed=9"])
    inner = _OrderModel()
    requester, backend = ensemble.wrap(inner, inner, cfg, "classification")
    demos = [Item(i, i, f"/{i}.jpg") for i in (10, 20, 30)]
    items = [Item(1, 1, "/a.jpg"), Item(2, 2, "/b.jpg")]

    together = backend.rank(requester.prepare(items, [demos, demos]))
    alone = backend.rank(requester.prepare(items[1:], [demos]))

    expected = np.mean([[d.id for d in o] for o in ensemble.orders(demos, 2, 4, 9, 0)], axis=0)
    assert requester.permutations == 4 and backend.ranks
    assert np.array_equal(together.mean[1], expected) and np.array_equal(alone.mean[0], expected)
    assert ensemble.orders(demos, 1, 4, 9, 0) != ensemble.orders(demos, 2, 4, 9, 0)  # each item its own orders


def test_two_demos_give_two_orders_and_one_demo_is_not_ensembled() -> None:
    inner = _OrderModel()
    two, _ = ensemble.wrap(inner, inner,
                             compose_cfg(["dataset=imagenet", "shots=2", "dataset.ensemble_permutations=6"]),
                             "classification")
    one, _ = ensemble.wrap(inner, inner,
                             compose_cfg(["dataset=imagenet", "shots=1", "dataset.ensemble_permutations=6"]),
                             "classification")

    assert two.permutations == 2
    assert one is inner


def test_ensembling_a_generation_dataset_is_an_error_naming_the_key() -> None:
    cfg = compose_cfg(["dataset=coco", "+dataset.ensemble_permutations=6"])

    with pytest.raises(UserError, match=r"dataset.ensemble_permutations=6: only classification"):
        ensemble.wrap(_OrderModel(), _OrderModel(), cfg, "caption")


@pytest.mark.slow
def test_an_imagenet_job_with_class_conditional_demos_and_ensembling_runs_and_records_its_demos(tmp_path: Path) -> None:
    proc = cli(["evalrunner", "dataset=imagenet", "model=nearest", "shots=4", "demo_selection=class_conditional",
                "num_classes_in_demos=2", "dataset.ensemble_permutations=3", "num_samples=6",
                f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    demos = json.loads((tmp_path / "run" / "demos.json").read_text())
    assert result["num_samples"] == 6
    assert all(len(d) == 4 for d in demos.values())
