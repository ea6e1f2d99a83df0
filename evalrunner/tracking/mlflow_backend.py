"""tracking=mlflow: a run per job, found again by its key, and a parent run per sweep that the job runs nest under.

MLflow picks run ids itself, so a run's key lives in the tag `evalrunner.run_key` and is searched before a run is
created. The default store is a SQLite file in the sweep folder (no server); artifacts then go beside it.
"""

import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evalrunner.tracking.runs import Run

KEY_TAG = "evalrunner.run_key"
_PARAM_LIMIT = 6000  # MLflow refuses longer param values
_BATCH = 100  # MLflow's most params per log_batch call


def destination(settings: DictConfig, sweep_dir: Path) -> str:
    return str(settings.uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{sweep_dir.resolve()}/mlflow.db")


def _client(settings: DictConfig, sweep_dir: Path) -> tuple[Any, str]:
    from mlflow.tracking import MlflowClient

    uri = destination(settings, sweep_dir)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        return client, experiment.experiment_id
    # Beside the SQLite file by default; a tracking server keeps its own artifact store.
    location = (sweep_dir.resolve() / "mlartifacts").as_uri() if uri.startswith("sqlite:///") else None
    return client, client.create_experiment(settings.experiment, artifact_location=location)


def _find(client: Any, experiment_id: str, key: str) -> Any:
    found = client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1)
    return found[0] if found else None


def _create(client: Any, experiment_id: str, run: Run) -> str:
    from mlflow.entities import Metric, Param

    created = client.create_run(experiment_id, run_name=run.name, tags={**run.tags, KEY_TAG: run.key})
    run_id: str = created.info.run_id
    now = int(time.time() * 1000)
    params = [Param(k, str(v)[:_PARAM_LIMIT]) for k, v in sorted(run.params.items())]
    for i in range(0, max(len(params), 1), _BATCH):
        client.log_batch(run_id, params=params[i : i + _BATCH],
                         metrics=[Metric(k, v, now, 0) for k, v in run.metrics.items()] if i == 0 else [])
    for path in run.files:
        client.log_artifact(run_id, str(path))
    return run_id


def log_job(settings: DictConfig, sweep_dir: Path, run: Run) -> str:
    """The job's run id; an existing run with its key is kept as it is (never logged twice)."""
    client, experiment_id = _client(settings, sweep_dir)
    existing = _find(client, experiment_id, run.key)
    if existing is not None:
        return str(existing.info.run_id)
    run_id = _create(client, experiment_id, run)
    client.set_terminated(run_id)
    return run_id


def log_sweep(settings: DictConfig, sweep_dir: Path, run: Run) -> str:
    """The sweep's parent run (results table, results files, report.json, the figure); its job runs nest under it."""
    client, experiment_id = _client(settings, sweep_dir)
    existing = _find(client, experiment_id, run.key)
    parent = str(existing.info.run_id) if existing is not None else _create(client, experiment_id, run)
    if existing is not None:
        for path in run.files:  # the results and the report change as a sweep is rerun or completed
            client.log_artifact(parent, str(path))
    for label, rows in run.tables.items():
        columns = {c: [r[c] for r in rows] for c in rows[0]} if rows else {}
        client.log_table(parent, data=columns, artifact_file=f"results_table/{_safe(label)}.json")
    children = client.search_runs([experiment_id], filter_string=f"tags.sweep = '{run.group}'", max_results=50000)
    for child in children:
        if child.info.run_id != parent and child.data.tags.get("mlflow.parentRunId") != parent:
            client.set_tag(child.info.run_id, "mlflow.parentRunId", parent)  # the UI nests runs by this tag
    client.set_terminated(parent)
    return parent


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "=,._-" else "_" for c in label)
