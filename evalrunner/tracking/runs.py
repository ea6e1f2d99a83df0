"""What a tracker gets from a finished job or sweep, whatever the tracker: params, metrics, tags and files.

A run's key is a hash of the job's fingerprint and its sweep folder, so the same job in the same sweep (a rerun in
place, a resumed or requeued job, a packed array element) always names the same run, and a job folder remembers
in `tracking.json` which runs it was logged to, so a job skipped as already done is not logged again.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalrunner import jobdir
from evalrunner.predictions import write_json_atomic

MARKER = "tracking.json"  # destination -> run key, for each tracker this job was logged to
_TAGS = ("dataset", "shots", "trial", "protocol", "model", "prompt_hash")


@dataclass
class Run:
    key: str  # stable id: derived from the fingerprint (jobs) or the sweep folder (the sweep's summary)
    name: str  # what the tracker's UI shows: the job's overrides, or the sweep folder
    group: str  # the sweep folder, as the trackers' group
    params: dict[str, Any] = field(default_factory=dict)  # the flattened resolved config
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # artifacts
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # the sweep's results, one row per cell


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"dataset": {"name": "coco"}} -> {"dataset.name": "coco"}; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def group_name(sweep_dir: Path) -> str:
    return str(sweep_dir.resolve())


def job_run(job_dir: Path, sweep_dir: Path, log_predictions: bool) -> Run | None:
    """The run of a finished job, or None when it has no result (failed or unfinished: nothing to log)."""
    path = job_dir / jobdir.RESULT
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    metrics = {k: float(result[k]) for k in ("score", "top5") if isinstance(result.get(k), (int, float))}
    metrics.update({f"timings/{k}": float(v) for k, v in result.get("timings", {}).items()})
    tags = {k: str(result[k]) for k in _TAGS if result.get(k) is not None}
    tags.update({"sweep": group_name(sweep_dir), "job_dir": str(job_dir.resolve()), "metric": str(result["metric"]),
                 "fingerprint": result["fingerprint"]})
    files = [job_dir / n for n in (jobdir.PREDICTIONS, jobdir.ITEM_SCORES) if (job_dir / n).is_file()]
    name = job_dir.name if job_dir != sweep_dir else f"{result['dataset']} shots={result['shots']}"
    key = _key("job", result["fingerprint"], group_name(sweep_dir))
    return Run(key, name, group_name(sweep_dir), flatten(result.get("config", {})), metrics, tags,
               files if log_predictions else [])


def sweep_run(sweep_dir: Path, tables: dict[str, dict[str, list[dict[str, Any]]]], files: list[Path]) -> Run:
    """The sweep's summary: its results tables as rows (config group, dataset, shots), its results and report files."""
    rows = {label: [{"config": label, "dataset": d, "shots": r["shots"], "mean": r["mean"], "stddev": r["stddev"],
                     "trials": json.dumps(r["trials"])} for d, rs in table.items() for r in rs]
            for label, table in tables.items()}
    return Run(_key("sweep", group_name(sweep_dir)), f"sweep {sweep_dir.name}", group_name(sweep_dir),
               tags={"sweep": group_name(sweep_dir), "kind": "sweep"}, files=[f for f in files if f.is_file()],
               tables=rows)


def content_hash(run: Run) -> str:
    """What the sweep's summary shows: its tables and report.json (the figure is drawn from the same numbers)."""
    digest = hashlib.sha256(json.dumps(run.tables, sort_keys=True).encode())
    for path in run.files:
        if path.suffix == ".json":
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def logged(job_dir: Path, destination: str, key: str) -> bool:
    """Whether this job was already logged as run `key` to `destination` (a tracker URI or W&B project)."""
    path = job_dir / MARKER
    return path.is_file() and json.loads(path.read_text()).get(destination) == key


def mark_logged(job_dir: Path, destination: str, key: str) -> None:
    path = job_dir / MARKER
    marks = json.loads(path.read_text()) if path.is_file() else {}
    write_json_atomic(path, {**marks, destination: key})
