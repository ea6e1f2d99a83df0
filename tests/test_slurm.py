"""Sweeps through hydra/launcher=slurm on a real one-node SLURM (started by .ci/test-env.sh)."""

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import TESTS, cli

pytestmark = pytest.mark.slow
# This machine's one node: no GPUs, 2 cores shared by the tasks.
ONE_NODE = ["hydra/launcher=slurm", "hydra.launcher.tasks_per_node=2", "hydra.launcher.gpus_per_node=null",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=null", "hydra.launcher.timeout_min=20"]


@pytest.fixture(scope="module", autouse=True)
def slurm() -> Iterator[None]:
    ok = shutil.which("sinfo") is not None and subprocess.run(
        ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout.strip() in {"idle", "mix", "alloc"}
    if not ok:
        message = "no running SLURM: start one with `bash .ci/slurm.sh` (as root)"
        if os.environ.get("CI"):
            pytest.fail(message + " -- CI must not skip the SLURM tests")
        pytest.skip(message)
    yield
    # A killed launcher leaves its jobs queued; without accounting submitit would not see them end.
    subprocess.run(["scancel", "--name=evalrunner"], check=False)


def test_a_two_task_sweep_on_slurm_gives_results_and_a_rerun_recomputes_nothing(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["evalrunner", "-m", *ONE_NODE, "dataset=coco,vqav2", "shots=0,4", f"hydra.sweep.dir={sweep}"]

    proc = cli(args, tmp_path, timeout=600)

    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((sweep / "results.json").read_text())
    assert {k: [r["shots"] for r in v] for k, v in results.items()} == {"coco": [0, 4], "vqav2": [0, 4]}
    jobs = sorted(sweep.glob("*/result.json"))
    assert len(jobs) == 4
    assert {json.loads(p.read_text())["world_size"] for p in jobs} == {2}
    local = cli(["evalrunner", "dataset=vqav2", "shots=4", f"hydra.run.dir={tmp_path / 'local'}"], tmp_path)
    assert local.returncode == 0
    assert ((sweep / "dataset=vqav2,shots=4" / "predictions.json").read_bytes()
            == (tmp_path / "local" / "predictions.json").read_bytes())
    before = {p: p.stat().st_mtime_ns for p in sweep.glob("*/*.json")}

    again = cli(args, tmp_path, timeout=600)

    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("*/*.json")} == before
    logs = "".join(p.read_text() for p in sweep.glob("*/evalrunner.log"))
    assert logs.count("already holds the result of this config") >= 4


def test_a_job_sent_usr2_mid_run_is_requeued_and_ends_as_an_uninterrupted_run(tmp_path: Path) -> None:
    sweep, reference = tmp_path / "sweep", tmp_path / "reference"
    assert cli(["evalrunner", "dataset=vqav2", "shots=4", f"hydra.run.dir={reference}"], tmp_path).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "evalrunner", "-m", *ONE_NODE, "dataset=vqav2", "shots=4", "batch_size=4",
         "model.latency_s=0.4", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    job = sweep / "dataset=vqav2,shots=4"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and sum(
            p.read_text().count("\n") for p in job.glob("partial/rank*.jsonl")) < 20:
        time.sleep(0.5)
    [job_id] = [p.name for p in (sweep / ".submitit").iterdir() if p.is_dir() and "%" not in p.name]

    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    output, _ = launcher.communicate(timeout=400)

    assert launcher.returncode == 0, output[-3000:]
    log = (job / "evalrunner.log").read_text()
    assert "resumed" in log
    resumed = int(log.split("resumed ")[1].split()[0])
    assert 20 <= resumed < 240
    assert (job / "predictions.json").read_bytes() == (reference / "predictions.json").read_bytes()
    lines = [json.loads(x) for p in job.glob("partial/rank*.jsonl") for x in p.read_text().splitlines()]
    assert len(lines) == len({r["id"] for r in lines}) == 240  # resumed work was not done twice


def test_a_failing_job_does_not_stop_the_others_and_is_named_with_its_log(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"

    proc = cli(["evalrunner", "-m", *ONE_NODE, "dataset=vqav2", "shots=5000,2", f"hydra.sweep.dir={sweep}"],
               tmp_path, timeout=600)

    assert proc.returncode != 0
    assert (sweep / "dataset=vqav2,shots=2" / "result.json").exists()
    assert "shots=5000 is larger than the query set" in json.loads(
        (sweep / "dataset=vqav2,shots=5000" / "error.json").read_text())["error"]
    collected = cli(["evalrunner.collect", str(sweep)], tmp_path)
    assert collected.returncode == 1
    assert "FAILED  dataset=vqav2 shots=5000" in collected.stdout
    assert str(sweep / "dataset=vqav2,shots=5000" / "evalrunner.log") in collected.stdout


def test_the_collector_reads_a_sweep_whose_launcher_died_before_its_jobs_ended(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "evalrunner", "-m", *ONE_NODE, "dataset=vqav2", "shots=1,2", "model.latency_s=0.2",
         f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(sweep.glob("*/partial/rank*.jsonl")):
        time.sleep(0.5)
    launcher.kill()
    launcher.wait()
    while time.monotonic() < deadline + 120 and len(list(sweep.glob("*/result.json"))) < 2:
        time.sleep(1)

    proc = cli(["evalrunner.collect", str(sweep)], tmp_path)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((sweep / "results.json").read_text())
    assert [r["shots"] for r in results["vqav2"]] == [1, 2]


def test_a_dead_rank_fails_its_job_by_name_without_hanging_the_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"

    proc = cli(["evalrunner", "-m", *ONE_NODE, "dataset=vqav2", "shots=1,2", "num_samples=20",
                "model.name=helpers.faulty:FaultyModel", "+model.fail_rank=1", "+model.mode=die", "dist_timeout_s=15",
                f"hydra.sweep.dir={sweep}"], tmp_path, timeout=300)

    assert proc.returncode != 0
    errors = [json.loads(p.read_text())["error"] for p in sweep.glob("*/error.json")]
    assert len(errors) == 2
    assert all("Ranks 1 did not answer" in e for e in errors), errors  # a timeout or a closed connection alike
    assert proc.stdout.count("FAILED  ") == 2


def _packed_jobs(sweep: Path) -> dict[str, list[dict]]:
    """Each array element's results, in job order: the element is the SLURM id in the job's .hydra/hydra.yaml."""
    elements: dict[str, list[tuple[int, dict]]] = {}
    for result in sweep.glob("*/result.json"):
        hydra = (result.parent / ".hydra" / "hydra.yaml").read_text()
        element, num = hydra.split("\n    id: ")[1].split()[0], int(hydra.split("\n    num: ")[1].split()[0])
        elements.setdefault(element, []).append((num, json.loads(result.read_text())))
    return {e: [r for _, r in sorted(jobs, key=lambda x: x[0])] for e, jobs in elements.items()}


def test_a_sweep_packed_two_jobs_per_element_loads_the_model_once_per_element_as_an_unpacked_run(
        tmp_path: Path) -> None:
    sweep, basic = tmp_path / "sweep", tmp_path / "basic"
    jobs = ["dataset=vqav2", "shots=0,1,2,4"]
    assert cli(["evalrunner", "-m", *jobs, f"hydra.sweep.dir={basic}"], tmp_path).returncode == 0

    proc = cli(["evalrunner", "-m", *ONE_NODE, "hydra.launcher.jobs_per_task=2", *jobs, f"hydra.sweep.dir={sweep}"],
               tmp_path, timeout=600)

    assert proc.returncode == 0, proc.stderr[-3000:]
    elements = _packed_jobs(sweep)
    assert len(elements) == 2
    for results in elements.values():
        assert [r["model_reused"] for r in results] == [False, True]
        assert [r["world_size"] for r in results] == [2, 2]
    assert sorted(r["shots"] for results in elements.values() for r in results) == [0, 1, 2, 4]
    for job in basic.glob("*/predictions.json"):
        assert (sweep / job.parent.name / "predictions.json").read_bytes() == job.read_bytes()
    assert json.loads((sweep / "results.json").read_text()) == json.loads((basic / "results.json").read_text())


def test_a_packed_element_sent_usr2_skips_its_finished_job_and_resumes_the_unfinished_one(tmp_path: Path) -> None:
    sweep, reference = tmp_path / "sweep", tmp_path / "reference"
    jobs = ["dataset=vqav2", "shots=0,4"]
    assert cli(["evalrunner", "-m", *jobs, f"hydra.sweep.dir={reference}"], tmp_path).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "evalrunner", "-m", *ONE_NODE, "hydra.launcher.jobs_per_task=2", *jobs, "batch_size=4",
         "model.latency_s=0.3", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first, second = sweep / "dataset=vqav2,shots=0", sweep / "dataset=vqav2,shots=4"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and sum(
            p.read_text().count("\n") for p in second.glob("partial/rank*.jsonl")) < 20:
        time.sleep(0.5)
    finished = {p: p.stat().st_mtime_ns for p in [first / "result.json", first / "evalrunner.log"]}
    [job_id] = [p.name for p in (sweep / ".submitit").iterdir() if p.is_dir() and "%" not in p.name]

    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    output, _ = launcher.communicate(timeout=400)

    assert launcher.returncode == 0, output[-3000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # the finished job was not run again
    log = (second / "evalrunner.log").read_text()
    resumed = int(log.split("resumed ")[1].split()[0])
    assert 20 <= resumed < 240
    assert json.loads((second / "result.json").read_text())["model_reused"] is False  # first of the requeued element
    for job in (first, second):
        assert (job / "predictions.json").read_bytes() == (reference / job.name / "predictions.json").read_bytes()
    lines = [json.loads(x) for p in second.glob("partial/rank*.jsonl") for x in p.read_text().splitlines()]
    assert len(lines) == len({r["id"] for r in lines}) == 240  # resumed work was not done twice
