"""Real torchrun processes with gloo: the same predictions on any number of ranks, and faults that never hang."""

import json
import sys
import time
from pathlib import Path

import pytest
from conftest import cli

pytestmark = pytest.mark.slow
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone")


def _torchrun(n: int, args: list[str], run: Path, timeout: float = 240):
    return cli([f"--nproc_per_node={n}", "-m", "evalrunner", *args, f"hydra.run.dir={run}"], run.parent,
               launcher=TORCHRUN, timeout=timeout)


@pytest.mark.parametrize("dataset", ["vqav2", "coco"])
def test_one_two_and_three_ranks_give_identical_predictions_and_score(tmp_path: Path, dataset: str) -> None:
    # 71 items: not divisible by 2 or 3, so shards are uneven
    args = [f"dataset={dataset}", "shots=4", "num_samples=71", "batch_size=4"]
    outputs = {}
    for n in (1, 2, 3):
        proc = _torchrun(n, args, tmp_path / f"n{n}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        preds = json.loads((tmp_path / f"n{n}" / "predictions.json").read_text())
        result = json.loads((tmp_path / f"n{n}" / "result.json").read_text())
        outputs[n] = (json.dumps(preds, sort_keys=True), result["score"])

        assert len(preds) == 71
        assert result["world_size"] == n

    assert outputs[1] == outputs[2] == outputs[3]


def test_a_rank_that_raises_fails_the_job_and_is_named(tmp_path: Path) -> None:
    proc = _torchrun(2, ["dataset=vqav2", "num_samples=20", "model.name=faulty:FaultyModel", "+model.fail_rank=1",
                         "+model.mode=raise"], tmp_path / "run")

    assert proc.returncode != 0
    assert "rank 1: ValueError: injected failure" in proc.stderr
    assert not (tmp_path / "run" / "result.json").exists()


def test_a_failing_rank_in_a_sweep_is_recorded_and_the_other_jobs_carry_on(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = cli(["--nproc_per_node=2", "-m", "evalrunner", "-m", "dataset=vqav2", "num_samples=20", "shots=1,2",
                "model.name=faulty:FaultyModel", "+model.fail_rank=1", "+model.mode=raise",
                f"hydra.sweep.dir={sweep}"], tmp_path, launcher=TORCHRUN, timeout=240)

    errors = sorted(sweep.glob("*/error.json"))
    assert proc.returncode != 0
    assert len(errors) == 2
    assert "rank 1" in json.loads(errors[0].read_text())["error"]


def test_a_rank_that_dies_fails_the_job_within_the_timeout(tmp_path: Path) -> None:
    start = time.monotonic()

    proc = _torchrun(2, ["dataset=vqav2", "num_samples=20", "model.name=faulty:FaultyModel", "+model.fail_rank=1",
                         "+model.mode=die", "dist_timeout_s=20"], tmp_path / "run", timeout=120)

    assert proc.returncode != 0
    assert time.monotonic() - start < 100
    assert not (tmp_path / "run" / "result.json").exists()


def test_a_rank_that_hangs_fails_the_job_within_the_timeout_naming_it(tmp_path: Path) -> None:
    start = time.monotonic()

    proc = _torchrun(2, ["dataset=vqav2", "num_samples=20", "model.name=faulty:FaultyModel", "+model.fail_rank=1",
                         "+model.mode=hang", "dist_timeout_s=15"], tmp_path / "run", timeout=120)

    assert proc.returncode != 0
    assert time.monotonic() - start < 90
    assert "did not answer within 15 s" in proc.stderr
    assert "1" in proc.stderr.split("did not answer within 15 s")[1].splitlines()[0]
    assert not (tmp_path / "run" / "result.json").exists()
