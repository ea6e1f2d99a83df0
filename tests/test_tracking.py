"""Experiment tracking: MLflow on a real SQLite store, W&B in offline mode read back from its run files."""

import json
import os
from pathlib import Path

import pytest
from helpers import cli, compose_cfg, wandb_offline
from omegaconf import OmegaConf

from evalrunner import jobdir
from evalrunner.tracking.runs import job_run, logged, mark_logged

SWEEP = ["-m", "dataset=vqav2,coco", "shots=0,2", "num_samples=8"]


def _results(sweep: Path) -> dict[str, dict]:
    return {d.name: json.loads((d / "result.json").read_text()) for d in sweep.iterdir()
            if (d / "result.json").exists()}


def _no_tracker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WANDB_"))}
    return {**env, "WANDB_SILENT": "true"}


@pytest.mark.slow
def test_an_mlflow_sweep_logs_one_run_per_job_under_a_parent_and_a_rerun_adds_none(tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="tracking=mlflow needs the mlflow extra: pip install -e '.[mlflow]'")
    from mlflow.tracking import MlflowClient

    sweep = tmp_path / "sweep"
    args = ["evalrunner", *SWEEP, "tracking=mlflow", "tracking.log_predictions=true", f"hydra.sweep.dir={sweep}"]
    first = cli(args, tmp_path, env=_no_tracker_env())
    again = cli(args, tmp_path, env=_no_tracker_env())

    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert "tracking" not in first.stderr + again.stderr  # no tracking warning
    client = MlflowClient(tracking_uri=f"sqlite:///{sweep}/mlflow.db")
    experiment = client.get_experiment_by_name("evalrunner")
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("kind") == "sweep"]
    jobs = {Path(r.data.tags["job_dir"]).name: r for r in runs if r is not parent}
    results = _results(sweep)
    assert sorted(jobs) == sorted(results) and len(results) == 4 and len(runs) == 5  # the rerun added none
    for name, result in results.items():
        run = jobs[name]
        assert run.data.metrics["score"] == result["score"]
        assert run.data.metrics["timings/total"] == result["timings"]["total"]
        assert run.data.params["shots"] == str(result["shots"]) and run.data.params["dataset.name"] == result["dataset"]
        assert (run.data.tags["dataset"], run.data.tags["fingerprint"]) == (result["dataset"], result["fingerprint"])
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"predictions.json", "item_scores.json"}
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"results.json", "report.json", "scores_vs_shots.png"} <= artifacts


@pytest.mark.slow
def test_a_wandb_offline_sweep_writes_one_grouped_run_per_job_with_its_score(tmp_path: Path) -> None:
    pytest.importorskip("wandb", reason="tracking=wandb needs the wandb extra: pip install -e '.[wandb]'")
    sweep = tmp_path / "sweep"
    args = ["evalrunner", "-m", "dataset=vqav2", "shots=0,2", "num_samples=8", "tracking=wandb",
            "tracking.mode=offline", f"hydra.sweep.dir={sweep}"]
    first = cli(args, tmp_path, env=_no_tracker_env())
    offline_runs = sorted((sweep / "wandb").glob("offline-run-*"))
    again = cli(args, tmp_path, env=_no_tracker_env())

    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert sorted((sweep / "wandb").glob("offline-run-*")) == offline_runs  # the rerun logged nothing new
    runs = {}
    for folder in offline_runs:
        records = wandb_offline.records(next(folder.glob("run-*.wandb")))
        [run] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        summary = {u.key or "/".join(u.nested_key): json.loads(u.value_json)
                   for r in records if r.WhichOneof("record_type") == "summary" for u in r.summary.update}
        config = {u.key: json.loads(u.value_json) for u in run.config.update}
        runs[run.job_type, config.get("shots")] = (run, summary, config)
    results = {r["shots"]: r for r in _results(sweep).values()}
    assert sorted(runs) == [("job", 0), ("job", 2), ("sweep", None)]
    for shots, result in results.items():
        run, summary, config = runs["job", shots]
        assert summary["score"] == result["score"]
        assert config["dataset.name"] == "vqav2" and f"shots={shots}" in run.tags
        assert run.run_group == runs["sweep", None][0].run_group == str(sweep.resolve())


@pytest.mark.slow
def test_a_tracking_failure_is_a_warning_and_the_job_still_succeeds(tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="tracking=mlflow needs the mlflow extra: pip install -e '.[mlflow]'")

    proc = cli(["evalrunner", "dataset=vqav2", "num_samples=5", "tracking=mlflow", "tracking.uri=bogus://nowhere",
                f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, env=_no_tracker_env())

    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "run" / "result.json").read_text())["num_samples"] == 5
    log = (tmp_path / "run" / "evalrunner.log").read_text()
    assert "tracking (mlflow) failed" in log and "the job's results are unaffected" in log
    assert not (tmp_path / "run" / "tracking.json").exists()


def _fake_job(job_dir: Path, fingerprint: str) -> Path:
    job_dir.mkdir(parents=True)
    (job_dir / jobdir.RESULT).write_text(json.dumps({
        "dataset": "coco", "model": "nearest", "shots": 4, "trial": 0, "metric": "CIDEr", "score": 12.5,
        "fingerprint": fingerprint, "protocol": "official", "timings": {"total": 1.0},
        "config": {"shots": 4, "dataset": {"name": "coco"}}}))
    return job_dir


def test_a_job_keeps_its_run_key_across_reruns_and_another_sweep_gets_another(tmp_path: Path) -> None:
    job = _fake_job(tmp_path / "a" / "shots=4", "f" * 16)
    moved = _fake_job(tmp_path / "b" / "shots=4", "f" * 16)
    other = _fake_job(tmp_path / "a" / "shots=8", "e" * 16)

    keys = [job_run(d, d.parent, False).key for d in (job, job, moved, other)]  # type: ignore[union-attr]

    assert keys[0] == keys[1] and len({keys[0], keys[2], keys[3]}) == 3


def test_a_job_logged_to_a_destination_is_known_there_and_only_there(tmp_path: Path) -> None:
    job = _fake_job(tmp_path / "sweep" / "shots=4", "f" * 16)
    key = job_run(job, job.parent, False).key  # type: ignore[union-attr]

    mark_logged(job, "sqlite:///a.db", key)

    assert logged(job, "sqlite:///a.db", key)
    assert not logged(job, "sqlite:///b.db", key) and not logged(job, "sqlite:///a.db", "other")


def test_a_job_without_a_result_gives_no_run(tmp_path: Path) -> None:
    (tmp_path / "failed").mkdir()
    (tmp_path / "failed" / jobdir.FAILURE).write_text('{"error": "x"}')

    assert job_run(tmp_path / "failed", tmp_path, True) is None


@pytest.mark.parametrize("backend", ["mlflow", "wandb"])
def test_turning_tracking_on_keeps_the_jobs_fingerprint_so_a_finished_sweep_is_not_rerun(backend: str) -> None:
    plain = OmegaConf.to_container(compose_cfg(["dataset=vqav2"]), resolve=True)
    tracked = OmegaConf.to_container(compose_cfg(["dataset=vqav2", f"tracking={backend}"]), resolve=True)

    assert tracked["tracking"]["backend"] == backend  # type: ignore[index]
    assert jobdir.fingerprint(tracked) == jobdir.fingerprint(plain)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_sweep_that_ran_without_tracking_is_logged_after_the_fact_once(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow", reason="tracking=mlflow needs the mlflow extra: pip install -e '.[mlflow]'")
    from mlflow.tracking import MlflowClient

    from evalrunner.tracking.__main__ import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    sweep = tmp_path / "sweep"
    assert cli(["evalrunner", "-m", "dataset=vqav2", "shots=0,2", "num_samples=8", f"hydra.sweep.dir={sweep}"],
               tmp_path, env=_no_tracker_env()).returncode == 0

    codes = [main([str(sweep), "tracking=mlflow"]) for _ in range(2)]

    assert codes == [0, 0]
    client = MlflowClient(tracking_uri=f"sqlite:///{sweep}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("evalrunner").experiment_id])
    assert sorted(r.data.tags.get("kind", r.data.tags.get("shots")) for r in runs) == ["0", "2", "sweep"]
