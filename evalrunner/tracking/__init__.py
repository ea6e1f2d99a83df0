"""Experiment tracking (`tracking=mlflow|wandb`): a Hydra callback that logs each finished job and then the sweep.

It runs in the job's own process after the job (rank 0 only), reads what the job wrote (result.json and friends),
and never changes it. Any tracking failure, a missing extra included, is a warning in the log: the job's results
stand whatever the tracker does.
"""

import importlib
import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from evalrunner.tracking.runs import Run, content_hash, job_run, logged, mark_logged, sweep_run

log = logging.getLogger("evalrunner")
BACKENDS = {"mlflow": "evalrunner.tracking.mlflow_backend", "wandb": "evalrunner.tracking.wandb_backend"}
_EXTRA = {"mlflow": "mlflow", "wandb": "wandb"}


def _backend(name: str) -> Any:
    if name not in BACKENDS:
        raise ValueError(f"tracking.backend={name!r}: choose none, {', '.join(BACKENDS)}")
    module = importlib.import_module(BACKENDS[name])
    try:
        importlib.import_module(_EXTRA[name])
    except ImportError:
        raise ImportError(f"{name} is not installed: pip install 'evalrunner[{name}]'") from None
    return module


def _folders(config: DictConfig) -> tuple[Path, Path]:
    """The job's folder and its sweep folder (a single run's own folder outside a sweep)."""
    job_dir = Path(config.hydra.runtime.output_dir)
    multirun = str(config.hydra.mode) == "RunMode.MULTIRUN"
    return job_dir, Path(config.hydra.sweep.dir) if multirun else job_dir


def track_job(settings: DictConfig, job_dir: Path, sweep_dir: Path) -> str | None:
    """Log one finished job; returns its run id, or None when there was nothing new to log."""
    backend = _backend(settings.backend)
    run = job_run(job_dir, sweep_dir, bool(settings.get("log_predictions", False)))
    if run is None:
        return None
    where = backend.destination(settings, sweep_dir)
    if logged(job_dir, where, run.key):
        return None  # a job skipped as already done, or a rerun: its run exists
    run_id: str = backend.log_job(settings, sweep_dir, run)
    mark_logged(job_dir, where, run.key)
    return run_id


def track_sweep(settings: DictConfig, sweep_dir: Path) -> str | None:
    """Log the sweep's results tables, results files, report.json and figure on its summary run; None when it was
    logged before with the same results (a rerun of a finished sweep)."""
    from evalrunner.collect import collect

    found = collect(sweep_dir)  # rewrites nothing that is current; the collector callback may not have run yet
    files = list(found.files.values())
    try:
        from evalrunner.report.__main__ import report

        report(sweep_dir)
        files += [sweep_dir / "report.json", sweep_dir / "scores_vs_shots.png"]
    except Exception as e:  # matplotlib missing, or no finished job: the tables are logged all the same
        log.warning("tracking: the sweep's report was not made (%s); logging its results only", e)
    run: Run = sweep_run(sweep_dir, found.tables, files)
    backend = _backend(settings.backend)
    where, state = backend.destination(settings, sweep_dir), f"{run.key}:{content_hash(run)}"
    if logged(sweep_dir, where, state):
        return None
    run_id = str(backend.log_sweep(settings, sweep_dir, run))
    mark_logged(sweep_dir, where, state)
    return run_id


def _is_rank0() -> bool:
    return os.environ.get("RANK", "0") == "0"


class TrackingCallback(Callback):
    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        if not _is_rank0() or config.tracking.backend == "none":
            return
        job_dir, sweep_dir = _folders(config)
        try:
            track_job(config.tracking, job_dir, sweep_dir)
        except Exception as e:
            log.warning("tracking (%s) failed for %s: %s: %s; the job's results are unaffected",
                        config.tracking.backend, job_dir, type(e).__name__, e)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not _is_rank0() or config.tracking.backend == "none":
            return
        try:
            track_sweep(config.tracking, Path(config.hydra.sweep.dir))
        except Exception as e:
            log.warning("tracking (%s) failed for the sweep %s: %s: %s; its results are unaffected",
                        config.tracking.backend, config.hydra.sweep.dir, type(e).__name__, e)
