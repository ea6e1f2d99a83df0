"""tracking=wandb: a run per job with its key as the W&B run id, grouped by sweep, and a summary run of the group.

Offline runs are written under <sweep folder>/wandb/ (`wandb sync <sweep folder>/wandb/offline-run-*` uploads them).
"""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evalrunner.tracking.runs import Run

_TAGGED = ("dataset", "shots", "trial", "protocol", "model", "prompt_hash")  # W&B tags are short strings


def destination(settings: DictConfig, sweep_dir: Path) -> str:
    return f"wandb:{settings.entity or ''}/{settings.project}"


def _init(settings: DictConfig, sweep_dir: Path, run: Run, job_type: str, config: dict[str, Any]) -> Any:
    import wandb

    return wandb.init(project=settings.project, entity=settings.entity, mode=settings.mode, id=run.key,
                      name=run.name, group=run.group[-128:], job_type=job_type, config=config, dir=str(sweep_dir),
                      tags=[f"{k}={v}"[:64] for k, v in run.tags.items() if k in _TAGGED], resume="allow",
                      settings=wandb.Settings(silent=True, console="off"))


def _attach(wb_run: Any, run: Run, kind: str) -> None:
    import wandb

    if run.files:
        artifact = wandb.Artifact(f"{kind}-{run.key}", type=kind)
        for path in run.files:
            artifact.add_file(str(path))
        wb_run.log_artifact(artifact)


def log_job(settings: DictConfig, sweep_dir: Path, run: Run) -> str:
    wb_run = _init(settings, sweep_dir, run, "job", {**run.params, "tags": run.tags})
    try:
        wb_run.summary.update(run.metrics)
        _attach(wb_run, run, "predictions")
    finally:
        wb_run.finish()
    return run.key


def log_sweep(settings: DictConfig, sweep_dir: Path, run: Run) -> str:
    import wandb

    wb_run = _init(settings, sweep_dir, run, "sweep", {"tags": run.tags})
    try:
        for label, rows in run.tables.items():
            if rows:
                table = wandb.Table(columns=list(rows[0]), data=[list(r.values()) for r in rows])
                wb_run.log({f"results/{label}": table})
        figure = next((f for f in run.files if f.suffix == ".png"), None)
        if figure is not None:
            wb_run.log({"scores_vs_shots": wandb.Image(str(figure))})
        _attach(wb_run, run, "sweep-report")
    finally:
        wb_run.finish()
    return run.key
