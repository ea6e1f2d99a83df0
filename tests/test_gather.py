"""gather_predictions on real gloo processes: rank 0 gets every prediction once, other ranks get nothing."""

import sys
from pathlib import Path

import pytest
from helpers import TESTS, cli

pytestmark = pytest.mark.slow


def test_rank_zero_gets_each_prediction_once_and_the_others_none(tmp_path: Path) -> None:
    worker = TESTS / "helpers" / "gather_worker.py"
    proc = cli(["--standalone", "--nproc_per_node=3", str(worker), str(tmp_path)], tmp_path,
               launcher=(sys.executable, "-m", "torch.distributed.run"), timeout=120)

    assert proc.returncode == 0, proc.stderr[-2000:]
    merged = eval((tmp_path / "rank0").read_text())
    assert merged == {5: "yes", 1: "un café", 3: "", 7: "2", 2: 'say "hi"\n', 4: "✓"}
    assert list(merged) == [5, 1, 3, 7, 2, 4]  # rank order, then shard order: the first copy wins
    assert (tmp_path / "rank1").read_text() == (tmp_path / "rank2").read_text() == "None"
