"""The card's sweep end to end in real processes: results.json, rising scores, rerun in place, resume."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SAMPLE, TESTS, cli

pytestmark = pytest.mark.slow


def test_the_cards_sweep_on_the_sample_gives_rising_scores_and_a_results_file(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"

    proc = cli(["evalrunner", "-m", "dataset=coco,vqav2", "shots=0,4,32", f"hydra.sweep.dir={sweep}"], tmp_path)

    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((sweep / "results.json").read_text())
    assert sorted(results) == ["coco", "vqav2"]
    for rows in results.values():
        assert [r["shots"] for r in rows] == [0, 4, 32]
        means = [r["mean"] for r in rows]
        assert means[0] < means[1] < means[2]
        for r in rows:
            assert r["mean"] == np.mean(r["trials"]) and r["stddev"] == 0.0
    job = json.loads((sweep / "dataset=vqav2,shots=4" / "result.json").read_text())
    assert job["sample_data"] is True and job["vqa_variant"] == "official"
    assert set(job["timings"]) == {"load", "model_load", "generate", "gather", "score", "total"}
    assert job["config"]["shots"] == 4 and job["config"]["dataset"]["name"] == "vqav2"
    preds = json.loads((sweep / "dataset=vqav2,shots=4" / "predictions.json").read_text())
    assert len(preds) == job["num_samples"] and set(preds[0]) == {"question_id", "answer"}
    caps = json.loads((sweep / "dataset=coco,shots=4" / "predictions.json").read_text())
    assert set(caps[0]) == {"image_id", "caption"}
    assert "SAMPLE data" in (sweep / "dataset=coco,shots=4" / "evalrunner.log").read_text()
    assert "coco" in proc.stdout and "32" in proc.stdout  # the collector's table

    before = {p: p.stat().st_mtime_ns for p in sweep.glob("**/*.json")}
    again = cli(["evalrunner", "-m", "dataset=coco,vqav2", "shots=0,4,32", f"hydra.sweep.dir={sweep}"], tmp_path)

    assert again.returncode == 0
    logs = "".join(p.read_text() for p in sweep.glob("*/evalrunner.log"))
    assert logs.count("already holds the result of this config") == 6
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("**/*.json")} == before
    assert json.loads((sweep / "dataset=vqav2,shots=4" / "result.json").read_text()) == job


def test_trials_give_mean_and_population_stddev(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"

    proc = cli(["evalrunner", "-m", "dataset=vqav2", "shots=2", "trial=0,1,2", f"hydra.sweep.dir={sweep}"], tmp_path)

    assert proc.returncode == 0, proc.stderr[-3000:]
    [row] = json.loads((sweep / "results.json").read_text())["vqav2"]
    scores = [json.loads((sweep / f"dataset=vqav2,shots=2,trial={t}" / "result.json").read_text())["score"]
              for t in range(3)]
    assert row["trials"] == scores
    assert row["stddev"] == pytest.approx(float(np.std(scores)), abs=0) and row["stddev"] > 0


def test_a_killed_job_resumes_from_its_partial_predictions(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "evalrunner", "dataset=vqav2", "batch_size=8", "model.latency_s=0.3"]
    run, reference = tmp_path / "run", tmp_path / "reference"
    assert cli(["evalrunner", "dataset=vqav2", f"hydra.run.dir={reference}"], tmp_path).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    proc = subprocess.Popen([*args, f"hydra.run.dir={run}"], cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
    partial = run / "partial" / "rank0.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not partial.exists() or partial.read_text().count("\n") < 40):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = partial.read_text().count("\n")
    assert 40 <= done < 240 and not (run / "result.json").exists()

    resumed = cli(["evalrunner", "dataset=vqav2", "batch_size=8", f"hydra.run.dir={run}"], tmp_path)

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed {done} predictions" in (run / "evalrunner.log").read_text()
    assert (run / "predictions.json").read_bytes() == (reference / "predictions.json").read_bytes()


def test_data_root_in_the_official_layout_is_scored_as_real_data(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE, tmp_path / "data")
    sample_run, real_run = tmp_path / "sample", tmp_path / "real"
    assert cli(["evalrunner", "dataset=vqav2", f"hydra.run.dir={sample_run}"], tmp_path).returncode == 0

    proc = cli(["evalrunner", "dataset=vqav2", f"data_root={tmp_path / 'data'}", f"hydra.run.dir={real_run}"],
               tmp_path)

    assert proc.returncode == 0, proc.stderr
    real, sample = (json.loads((d / "result.json").read_text()) for d in (real_run, sample_run))
    assert real["sample_data"] is False and sample["sample_data"] is True
    assert real["score"] == sample["score"]
    assert "SAMPLE" not in (real_run / "evalrunner.log").read_text()


def test_a_sweep_without_a_sweep_dir_writes_under_multirun_date_time(tmp_path: Path) -> None:
    proc = cli(["evalrunner", "-m", "dataset=vqav2", "shots=0,4"], tmp_path)

    assert proc.returncode == 0, proc.stderr[-2000:]
    [results] = tmp_path.glob("multirun/*/*/results.json")
    assert [r["shots"] for r in json.loads(results.read_text())["vqav2"]] == [0, 4]


def test_the_local_submitit_launcher_runs_each_job_as_two_ranks(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"

    # a MASTER_ADDR the cluster's environment sets is kept (submitit's export refuses to overwrite it by default)
    proc = cli(["evalrunner", "-m", "hydra/launcher=local", "hydra.launcher.tasks_per_node=2", "dataset=vqav2",
                "shots=0,4", f"hydra.sweep.dir={sweep}"], tmp_path, env={"MASTER_ADDR": "127.0.0.1"})

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["shots"] for r in json.loads((sweep / "results.json").read_text())["vqav2"]] == [0, 4]
    assert {json.loads(p.read_text())["world_size"] for p in sweep.glob("*/result.json")} == {2}


def test_ranks_that_cannot_form_a_process_group_fail_the_job_by_name(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    with socket.socket() as held:  # bound, not listening: rank 0's store cannot bind, rank 1 finds nobody
        held.bind(("127.0.0.1", 0))
        proc = cli(["evalrunner", "-m", "hydra/launcher=local", "hydra.launcher.tasks_per_node=2", "dataset=vqav2",
                    "shots=0", "dist_timeout_s=5", f"hydra.sweep.dir={sweep}"], tmp_path,
                   env={"MASTER_PORT": str(held.getsockname()[1])})

    assert proc.returncode == 1, proc.stderr[-2000:]
    error = json.loads((sweep / "dataset=vqav2,shots=0" / "error.json").read_text())["error"]
    assert error.startswith("the job's ranks did not form a process group") and "EADDRINUSE" in error
    [failed] = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
    assert "did not form a process group" in failed


def test_a_job_that_crashes_hard_does_not_stop_the_wait_for_the_others(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"

    # fail_rank=5 names no rank of a one-rank job, so that job runs normally
    proc = cli(["evalrunner", "-m", "hydra/launcher=local", "dataset=vqav2", "num_samples=10",
                "model.name=helpers.faulty:FaultyModel", "+model.mode=die", "+model.fail_rank=0,5",
                f"hydra.sweep.dir={sweep}"], tmp_path)

    assert proc.returncode != 0
    assert "crashed" in proc.stdout + proc.stderr
    assert len(json.loads((sweep / "results.json").read_text())["vqav2"][0]["trials"]) == 1
    [unfinished] = [line for line in proc.stdout.splitlines() if line.startswith("UNFINISHED")]
    assert "+model.fail_rank=0" in unfinished and "evalrunner.log" in unfinished


def test_a_sweep_over_two_keys_besides_trial_gives_one_results_file_per_configuration(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"

    proc = cli(["evalrunner", "-m", "dataset=vqav2", "shots=4", "num_samples=30", "query_set_size=50,1000",
                "seed=1,2", "trial=0,1", f"hydra.sweep.dir={sweep}"], tmp_path)

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (sweep / "results.json").exists()
    files = sorted(p.name for p in sweep.glob("results.*.json"))
    assert files == [f"results.query_set_size={q},seed={s}.json" for q in (1000, 50) for s in (1, 2)]
    for name in files:
        q, s = (part.split("=")[1] for part in name[len("results."):-len(".json")].split(","))
        [row] = json.loads((sweep / name).read_text())["vqav2"]
        expected = [json.loads((sweep / f"dataset=vqav2,num_samples=30,query_set_size={q},seed={s},shots=4,trial={t}"
                                / "result.json").read_text())["score"] for t in (0, 1)]
        assert row["trials"] == expected
        assert f"query_set_size={q},seed={s} -> {sweep / name}" in proc.stdout


def test_an_extended_sweep_folder_counts_each_job_once_and_a_default_value_is_no_new_config(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    first = ["evalrunner", "-m", "dataset=vqav2", "shots=4", "num_samples=20", f"hydra.sweep.dir={sweep}"]
    assert cli(first, tmp_path).returncode == 0

    proc = cli([*first, "seed=42", "trial=0,1"], tmp_path)  # 42 is seed's default

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in sweep.glob("results*.json")) == ["results.json"]
    [row] = json.loads((sweep / "results.json").read_text())["vqav2"]
    again = [json.loads((sweep / f"dataset=vqav2,num_samples=20,seed=42,shots=4,trial={t}" / "result.json")
                        .read_text())["score"] for t in (0, 1)]
    assert row["trials"] == again
    [same] = [line for line in proc.stdout.splitlines() if line.startswith("SAME JOB")]
    assert str(sweep / "dataset=vqav2,num_samples=20,shots=4") in same


def test_a_sweep_defined_in_yaml_is_collected_without_jobs_it_never_launched(tmp_path: Path) -> None:
    sweep, conf = tmp_path / "sweep", tmp_path / "conf"
    conf.mkdir()
    (conf / "shots_sweep.yaml").write_text("defaults:\n  - config\n  - _self_\n"
                                           "hydra:\n  sweeper:\n    params:\n      shots: 0,2\n")

    proc = cli(["evalrunner", "-m", "--config-dir", str(conf), "--config-name", "shots_sweep", "dataset=vqav2",
                "num_samples=10", f"hydra.sweep.dir={sweep}"], tmp_path)

    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "MISSING" not in proc.stdout
    assert [r["shots"] for r in json.loads((sweep / "results.json").read_text())["vqav2"]] == [0, 2]


def test_path_values_in_a_sweep_make_flat_job_folders_that_a_rerun_finds(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["evalrunner", "-m", "dataset=vqav2", "shots=0,2", "num_samples=10", f"data_root={SAMPLE}",
            f"hydra.sweep.dir={sweep}"]

    proc = cli(args, tmp_path)

    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = sorted(p.parent.relative_to(sweep) for p in sweep.rglob(".hydra"))
    assert len(jobs) == 2 and all(len(j.parts) == 1 and j.name.startswith("data_root=sample_data-") for j in jobs)
    assert cli(args, tmp_path).returncode == 0
    logs = "".join(p.read_text() for p in sweep.glob("*/evalrunner.log"))
    assert logs.count("already holds the result of this config") == 2
