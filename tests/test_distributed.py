"""Real torchrun processes with gloo: the same predictions on any number of ranks, and faults that never hang."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TESTS, cli

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
    proc = _torchrun(2, ["dataset=vqav2", "num_samples=20", "model.name=helpers.faulty:FaultyModel",
                         "+model.fail_rank=1",
                         "+model.mode=raise"], tmp_path / "run")

    assert proc.returncode != 0
    assert "rank 1: ValueError: injected failure" in proc.stderr
    assert not (tmp_path / "run" / "result.json").exists()
    rank1 = [line for line in (tmp_path / "run" / "evalrunner.log").read_text().splitlines() if "on rank 1" in line]
    assert rank1 and all("[rank 1] " in line for line in rank1)  # both ranks append to one log


def test_a_user_error_every_rank_raises_alike_is_one_line_from_rank_0(tmp_path: Path) -> None:
    proc = _torchrun(2, ["dataset=vqav2", "num_samples=20", "model.name=helpers.faulty:FaultyModel",
                         "+model.fail_rank=-1", "+model.mode=refuse"], tmp_path / "run")

    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if "refused on every rank" in line]
    assert ours == ["error: model.mode=refuse: refused on every rank; pick another mode"], proc.stderr[-2000:]
    assert "evalrunner/" not in proc.stderr  # no traceback through our code; torchrun's own report follows


def test_a_failing_rank_in_a_sweep_is_recorded_and_the_other_jobs_carry_on(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = cli(["--nproc_per_node=2", "-m", "evalrunner", "-m", "dataset=vqav2", "num_samples=20", "shots=1,2",
                "model.name=helpers.faulty:FaultyModel", "+model.fail_rank=1", "+model.mode=raise",
                f"hydra.sweep.dir={sweep}"], tmp_path, launcher=TORCHRUN, timeout=240)

    errors = sorted(sweep.glob("*/error.json"))
    assert proc.returncode != 0
    assert len(errors) == 2
    assert "rank 1" in json.loads(errors[0].read_text())["error"]


def test_a_rank_that_dies_fails_the_job_within_the_timeout_naming_it_while_the_others_wait(tmp_path: Path) -> None:
    # Plain processes, not torchrun: torchrun would kill the other ranks itself once one dies.
    env = {**os.environ, "PYTHONPATH": str(TESTS), "WORLD_SIZE": "3", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    args = [sys.executable, "-m", "evalrunner", "dataset=vqav2", "num_samples=20",
            "model.name=helpers.faulty:FaultyModel",
            "+model.fail_rank=2", "+model.mode=die", "dist_timeout_s=15", f"hydra.run.dir={tmp_path / 'run'}"]
    start = time.monotonic()
    procs = [subprocess.Popen(args, cwd=tmp_path, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    elapsed = time.monotonic() - start

    assert procs[2].returncode == 3  # the injected death
    for rank in (0, 1):
        assert procs[rank].returncode != 0
        error = outputs[rank][1]
        assert "did not answer within 15 s" in error, error[-2000:]
        assert "2" in error.split("did not answer within 15 s")[1].splitlines()[0]
    assert elapsed < 15 + 45
    assert not (tmp_path / "run" / "result.json").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_rank_that_hangs_fails_the_job_within_the_timeout_naming_it(tmp_path: Path) -> None:
    start = time.monotonic()

    proc = _torchrun(2, ["dataset=vqav2", "num_samples=20", "model.name=helpers.faulty:FaultyModel",
                         "+model.fail_rank=1",
                         "+model.mode=hang", "dist_timeout_s=15"], tmp_path / "run", timeout=120)

    assert proc.returncode != 0
    assert time.monotonic() - start < 90
    assert "did not answer within 15 s" in proc.stderr
    assert "1" in proc.stderr.split("did not answer within 15 s")[1].splitlines()[0]
    assert not (tmp_path / "run" / "result.json").exists()


def test_a_sweep_of_three_jobs_on_two_ranks_in_one_process_group_exits_cleanly(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"

    proc = cli(["--nproc_per_node=2", "-m", "evalrunner", "-m", "dataset=vqav2", "num_samples=30", "shots=0,1,2",
                f"hydra.sweep.dir={sweep}"], tmp_path, launcher=TORCHRUN, timeout=240)

    # Rank 1 ends its sweep while rank 0 still scores the last job: only rank 0 may collect.
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    assert [r["shots"] for r in json.loads((sweep / "results.json").read_text())["vqav2"]] == [0, 1, 2]
    assert "UNFINISHED" not in proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_rank_dead_before_the_health_check_is_named_when_gloo_only_sees_a_closed_connection(tmp_path: Path) -> None:
    report = tmp_path / "rank0.txt"
    env = {**os.environ, "PYTHONPATH": str(TESTS), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, str(TESTS / "helpers" / "dying_worker.py"), str(report), "60"],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in (0, 1)]

    started = time.monotonic()
    codes = [p.wait(timeout=120) for p in procs]

    assert codes == [0, 3]
    assert "Ranks 1 did not answer" in report.read_text()
    assert time.monotonic() - started < 50  # named at once, not after the 60 s dist_timeout_s
