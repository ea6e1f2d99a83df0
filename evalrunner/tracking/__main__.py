"""python -m evalrunner.tracking SWEEP_DIR tracking=mlflow|wandb [tracking.KEY=VALUE ...]: log a sweep after the fact.

For a sweep that ran without tracking, or whose launching process died before the sweep's end (the callback logs
each job as it ends, but the summary only when the sweep ends). Jobs already logged are not logged again.
"""

import sys
from pathlib import Path

from omegaconf import DictConfig

from evalrunner.errors import UserError
from evalrunner.tracking import track_job, track_sweep


def _settings(overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_module

    import evalrunner.config  # noqa: F401  (the schema conf/config.yaml extends)

    bad = [o for o in overrides if not o.startswith("tracking")]
    if bad:
        raise UserError(f"{bad[0]!r}: give only tracking=... and tracking.KEY=VALUE settings")
    with initialize_config_module("evalrunner.conf", version_base="1.3"):
        settings: DictConfig = compose("config", overrides=overrides).tracking
    if settings.backend == "none":
        raise UserError("say where to log: tracking=mlflow or tracking=wandb")
    return settings


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    sweep = Path(argv[0])
    try:
        settings = _settings(argv[1:])
        if not sweep.is_dir():
            raise UserError(f"SWEEP_DIR: {sweep} is not a directory; pass a multirun/<date>/<time> folder")
        jobs = sorted(p.parent for p in sweep.rglob(".hydra") if p.parent != sweep)
        new = [d for d in jobs if track_job(settings, d, sweep) is not None]
        track_sweep(settings, sweep)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{sweep}: {len(new)} job(s) logged to {settings.backend}, {len(jobs) - len(new)} already there or "
          "unfinished; the sweep's summary is current")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
