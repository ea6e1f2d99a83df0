import random

import pytest

from evalrunner.datasets.base import Item
from evalrunner.demos import DemoSampler, query_set, select_test_items
from evalrunner.errors import UserError


def _items(n: int, images: int | None = None) -> list[Item]:
    return [Item(id=i, image_id=i % (images or n), image_path=f"{i}.jpg", answer=str(i)) for i in range(n)]


def test_demos_of_an_item_do_not_depend_on_item_order() -> None:
    pool, items = _items(100), _items(30)
    sampler = DemoSampler(pool, 8, seed=1, trial=0)
    shuffled = items[:]
    random.Random(0).shuffle(shuffled)

    forward = {it.id: sampler(it) for it in items}
    backward = {it.id: DemoSampler(pool, 8, seed=1, trial=0)(it) for it in shuffled}

    assert forward == backward


def test_demos_never_show_the_items_own_image() -> None:
    pool = _items(40, images=10)  # every image appears 4 times in the pool
    sampler = DemoSampler(pool, 36, seed=3, trial=1)

    for item in _items(10):
        demos = sampler(item)

        assert len(demos) == 36
        assert all(d.image_id != item.image_id for d in demos)


def test_trials_draw_different_demos_and_the_same_trial_the_same() -> None:
    pool, item = _items(200), Item(id=1000, image_id=1000, image_path="x.jpg")

    assert DemoSampler(pool, 4, 42, 0)(item) == DemoSampler(pool, 4, 42, 0)(item)
    assert DemoSampler(pool, 4, 42, 0)(item) != DemoSampler(pool, 4, 42, 1)(item)


def test_sampling_leaves_the_global_rng_alone() -> None:
    random.seed(5)
    expected = random.random()
    random.seed(5)

    DemoSampler(_items(50), 4, 1, 0)(Item(id=99, image_id=99, image_path="x"))

    assert random.random() == expected


def test_zero_shots_means_no_demos() -> None:
    assert DemoSampler(_items(10), 0, 1, 0)(Item(id=99, image_id=99, image_path="x")) == []


def test_more_shots_than_the_query_set_is_an_error_naming_shots() -> None:
    with pytest.raises(UserError, match="shots=11"):
        DemoSampler(_items(10), 11, 1, 0)


def test_test_subset_is_seeded_and_independent_of_the_trial() -> None:
    items = _items(100)

    a, b = select_test_items(items, 10, seed=7), select_test_items(items, 10, seed=7)

    assert a == b and len(a) == 10
    assert select_test_items(items, 10, seed=8) != a
    assert select_test_items(items, None, seed=7) == items


def test_query_set_is_capped_at_the_pool_and_seeded_per_trial() -> None:
    pool = _items(100)

    assert query_set(pool, 2048, 1, 0) == pool
    assert query_set(pool, 10, 1, 0) == query_set(pool, 10, 1, 0)
    assert query_set(pool, 10, 1, 0) != query_set(pool, 10, 1, 1)
