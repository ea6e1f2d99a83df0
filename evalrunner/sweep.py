"""A sweep folder's jobs as the collector reads them: finished, submissions, and every kind of problem.

A job is a folder holding `.hydra/`. The jobs expected but never started come from what the sweeper launched:
for Hydra's basic sweeper, its own expansion of the sweep it saved in multirun.yaml (its `params` and the
command line's overrides, combined as the sweeper combines them); another sweeper (Optuna, Ax, a user's) decides
its jobs as it goes, so only the folders its jobs wrote are known.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evalrunner.errors import UserError
from evalrunner.jobdir import FAILURE, RESULT

# what the collector and the report read, and its type; the score is null on a split without public answers
_RESULT_KEYS: dict[str, tuple[type, ...]] = {"dataset": (str,), "shots": (int,), "trial": (int,),
                                            "score": (int, float, type(None)), "config": (dict,)}
_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


@dataclass(frozen=True)
class Job:
    dir: Path
    overrides: tuple[str, ...]  # its .hydra/overrides.yaml: what the sweeper launched it with
    result: dict[str, Any]  # its result.json

    @property
    def name(self) -> str:
        return " ".join(self.overrides) or self.dir.name


@dataclass
class Sweep:
    finished: list[Job] = field(default_factory=list)  # scored jobs
    submissions: list[str] = field(default_factory=list)  # jobs on a split without public answers
    problems: list[str] = field(default_factory=list)  # failed, unfinished, damaged and missing jobs


def read_json(path: Path) -> tuple[Any, str | None]:
    """The file's JSON, or why it can't be read."""
    try:
        return json.loads(path.read_bytes()), None
    except (OSError, ValueError) as e:  # ValueError: bad JSON and bytes that are not UTF-8
        return None, f"{path.name} is unreadable ({type(e).__name__}: {str(e)[:120]})"


def _overrides(job_dir: Path) -> tuple[tuple[str, ...], str | None]:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.exists():
        return (), None
    try:
        loaded = yaml.safe_load(path.read_text()) or []
    except (OSError, ValueError, yaml.YAMLError) as e:
        return (), f".hydra/overrides.yaml is unreadable ({type(e).__name__})"
    if not isinstance(loaded, list):
        return (), ".hydra/overrides.yaml is not a list of overrides"
    return tuple(str(o) for o in loaded), None


def _malformed(result: Any) -> str | None:
    if not isinstance(result, dict):
        return f"{RESULT} is not a JSON object"
    wrong = [k for k, types in _RESULT_KEYS.items()
             if not isinstance(result.get(k, ...), types) or isinstance(result.get(k), bool)]
    return f"{RESULT} lacks or mistypes {', '.join(wrong)}" if wrong else None


def _damaged(name: str, job_dir: Path, why: str) -> str:
    return f"DAMAGED  {name}: {why}; rerun the job or move {job_dir} away"


def read(sweep_dir: Path) -> Sweep:
    if not sweep_dir.is_dir():
        raise UserError(f"SWEEP_DIR: {sweep_dir} is not a directory; pass a multirun/<date>/<time> folder")
    job_dirs = sorted(p.parent for p in sweep_dir.rglob(".hydra") if p.parent != sweep_dir)
    if not job_dirs:
        raise UserError(f"SWEEP_DIR: {sweep_dir} holds no jobs (no */.hydra); pass the folder of a multirun sweep")
    out, seen = Sweep(), set()
    for d in job_dirs:
        overrides, bad = _overrides(d)
        seen.add(frozenset(overrides))
        name = " ".join(overrides) or d.name
        log = next(iter(sorted(d.glob("*.log"))), d)
        if bad is not None:
            out.problems.append(_damaged(name, d, bad))
        elif (d / RESULT).exists():
            result, bad = read_json(d / RESULT)
            if bad is None:
                bad = _malformed(result)
            if bad is not None:
                out.problems.append(_damaged(name, d, bad))
            elif result["score"] is None:
                out.submissions.append(f"SUBMISSION  {name}: no public answers; the submission file is in {d}")
            else:
                out.finished.append(Job(d, overrides, result))
        elif (d / FAILURE).exists():
            error, bad = read_json(d / FAILURE)
            if bad or not isinstance(error, dict) or not isinstance(error.get("error"), str):
                out.problems.append(_damaged(name, d, bad or f"{FAILURE} holds no error message"))
            else:
                first = (error["error"].splitlines() or ["(empty message)"])[0]
                out.problems.append(f"FAILED  {name}: {first} (log: {log})")
        else:
            out.problems.append(f"UNFINISHED  {name}: no result.json (running, killed or lost; log: {log})")
    for combo in launched(sweep_dir) or []:
        if combo not in seen:
            out.problems.append(f"MISSING  {' '.join(sorted(combo))}: the job never started")
    return out


def launched(sweep_dir: Path) -> list[frozenset[str]] | None:
    """The jobs the basic sweeper launched, each as its set of overrides; None when that can't be known."""
    try:
        saved = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())
        sweeper = saved["hydra"]["sweeper"]
        task = list(saved["hydra"]["overrides"]["task"])
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):
        return None
    if not isinstance(sweeper, dict) or sweeper.get("_target_") != _BASIC_SWEEPER:
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]  # before the command line, as it does
    overrides = OverridesParser.create().parse_overrides([*params, *task])
    [jobs] = BasicSweeper.split_arguments(overrides, None)
    return [frozenset(job) for job in jobs]
