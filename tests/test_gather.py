"""gather_predictions on real gloo processes: rank 0 gets every prediction once, other ranks get nothing."""

import os
import socket
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from evalrunner.distributed import close, gather_predictions, init_ranks

pytestmark = pytest.mark.slow
SHARDS = {
    0: ([5, 1, 3, 7], ["yes", "un café", "", "2"]),
    1: ([2, 5, 4], ['say "hi"\n', "yes", "✓"]),  # 5 repeats rank 0's item, as a padded sampler does
    2: ([], []),  # a rank whose shard is empty
}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    ranks = init_ranks(60)
    got = gather_predictions(ranks, *SHARDS[rank])
    close(ranks)
    Path(out, f"rank{rank}").write_text(repr(got))


def test_rank_zero_gets_each_prediction_once_and_the_others_none(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    mp.spawn(_worker, args=(3, port, str(tmp_path)), nprocs=3, join=True)

    merged = eval((tmp_path / "rank0").read_text())
    assert merged == {5: "yes", 1: "un café", 3: "", 7: "2", 2: 'say "hi"\n', 4: "✓"}
    assert (tmp_path / "rank1").read_text() == (tmp_path / "rank2").read_text() == "None"
