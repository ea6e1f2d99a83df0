"""How the global batches are dealt to ranks, or to engines of several ranks that step in lockstep."""

from evalrunner import batches
from evalrunner.datasets.base import Item


def _batches(n: int, size: int) -> list[list[Item]]:
    return batches.form([Item(id=i, image_id=i, image_path=f"{i}.jpg") for i in range(n)], size)


def test_each_batch_with_a_pending_item_goes_to_exactly_one_rank_and_done_ones_to_none() -> None:
    formed = _batches(11, 2)  # 6 batches, the last of one item
    done = {0, 1, 4}  # batch 0 is done, batch 2 only in part: it runs again whole

    shares = [batches.deal(formed, done, r, 3) for r in range(3)]

    assert all(own == len(mine) for mine, own in shares)
    dealt = [[it.id for it in b] for mine, _ in shares for b in mine]
    assert sorted(dealt) == [[2, 3], [4, 5], [6, 7], [8, 9], [10]]


def test_in_lockstep_a_rank_one_batch_short_runs_a_copy_it_does_not_own() -> None:
    formed = _batches(10, 2)  # 5 batches over 2 engines: 3 and 2

    shares = [batches.deal(formed, set(), r, 2, lockstep=True) for r in range(2)]

    assert [len(mine) for mine, _ in shares] == [3, 3]
    assert [own for _, own in shares] == [3, 2]
    owned = sorted(it.id for mine, own in shares for b in mine[:own] for it in b)
    assert owned == list(range(10))
    # nothing pending: no rank runs anything
    assert batches.deal(formed, set(range(10)), 1, 2, lockstep=True) == ([], 0)
