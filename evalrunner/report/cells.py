"""A report cell: the finished trials of one (config group, dataset, shots), with what its interval resamples."""

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from evalrunner.errors import UserError
from evalrunner.jobdir import ITEM_SCORES, PREDICTIONS, REPORT_DATA
from evalrunner.report.bootstrap import ItemMeans, RocAuc, Statistic
from evalrunner.tables import Collected, collect

T = TypeVar("T")

# What each kind of interval is, said once in the report. CIDEr's IDF is a corpus statistic: per-image scores
# come from the IDF of the job's whole test set, which a resample keeps instead of recomputing.
NOTES = {
    "items": "per-item scores (item_scores.json) resampled",
    "cider": "per-image CIDEr-D resampled with the IDF of the job's whole test set held fixed (an approximation: "
             "a resample does not recompute the document frequencies)",
    "auc": "ROC-AUC recomputed on every resample from predictions.json's probabilities and the labels the job saved "
           "(report_data.json)",
}


@dataclass(frozen=True)
class Cell:
    label: str  # the collector's name of the config group (its results file)
    group: str  # the name the report shows: the label, or the model for a sweep of one config group
    dataset: str
    shots: int
    jobs: tuple[Path, ...]  # the finished trials' folders, ordered as results.json orders the trials
    results: tuple[dict[str, Any], ...]  # their result.json

    @property
    def key(self) -> str:
        return f"{self.group}|{self.dataset}|{self.shots}"

    @property
    def metric(self) -> str:
        return str(self.results[0].get("metric", "score"))

    @property
    def trials(self) -> list[float]:
        return [float(r["score"]) for r in self.results]

    @property
    def mean(self) -> float:
        return float(np.mean(self.trials))  # as results.json computes it

    @property
    def stddev(self) -> float:
        return float(np.std(self.trials))


@dataclass(frozen=True)
class Stats:
    cell: Cell
    interval: tuple[float, float] | None  # 95% bootstrap interval of the mean over trials; None: nothing to resample
    items: int  # test items resampled (0 when there is no interval)
    kind: str | None  # a key of NOTES


def _read(path: Path, convert: Callable[[Any], T]) -> T:
    """The JSON file at `path`, passed through `convert`; any file that does not parse or convert names itself."""
    try:
        return convert(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as e:
        raise UserError(f"{path}: unreadable ({type(e).__name__}: {e}); rerun the job or move its folder "
                        "away") from None


def statistic(cell: Cell) -> tuple[Statistic, str] | None:
    """What the cell's interval resamples, and its kind; None when its jobs saved nothing per item."""
    if all((d / ITEM_SCORES).exists() for d in cell.jobs):
        maps = [_read(d / ITEM_SCORES, lambda m: {int(k): float(v) for k, v in m.items()}) for d in cell.jobs]
        return ItemMeans.from_maps(maps), "cider" if cell.metric.lower().startswith("cider") else "items"
    if cell.metric != "ROC-AUC" or not all((d / PREDICTIONS).exists() and (d / REPORT_DATA).exists()
                                           for d in cell.jobs):
        return None
    trials = []
    for d in cell.jobs:
        # predictions.json's `label` is the predicted one (the challenge's columns); the truth is in report_data.json
        truth = _read(d / REPORT_DATA, lambda m: {int(k): bool(v) for k, v in m["labels"].items()})
        trials.append(_read(d / PREDICTIONS, lambda ps, t=truth: {int(p["id"]): (float(p["proba"]), t[int(p["id"])])
                                                                   for p in ps}))
    return RocAuc.from_rows(trials), "auc"


def comparable(a: Cell, b: Cell, sa: Statistic | None, sb: Statistic | None) -> str | None:
    """Why two sweeps' cells cannot be compared, or None when they can."""
    for key, what in (("metric", "metric"), ("vqa_variant", "metric variant"), ("protocol", "protocol"),
                      ("prompt_hash", "prompt hash")):
        va, vb = ({_field(r, key) for r in c.results} for c in (a, b))
        if va != vb:
            return f"{what} differs ({key}: {_show(va)} vs {_show(vb)})"
    if sa is None or sb is None:
        return "no per-item scores to pair (item_scores.json or predictions.json probabilities)"
    if not np.array_equal(sa.ids, sb.ids):
        common = len(np.intersect1d(sa.ids, sb.ids))
        return f"test items differ ({len(sa.ids)} vs {len(sb.ids)} items, {common} in common)"
    return None


def _field(result: dict[str, Any], key: str) -> str:
    value = result.get(key, result.get("config", {}).get(key))
    return "none" if value is None else json.dumps(value, sort_keys=True)


def _show(values: set[str]) -> str:
    return ",".join(sorted(values))


def cells_of(c: Collected) -> list[Cell]:
    """The collector's tables as cells: one per (results file, dataset, shots)."""
    cells = []
    for label, jobs in c.jobs.items():
        by_row: dict[tuple[str, int], list[tuple[Path, dict[str, Any]]]] = defaultdict(list)
        for d, r in jobs:
            by_row[(r["dataset"], r["shots"])].append((d, r))
        for (dataset, shots), trials in sorted(by_row.items()):
            trials.sort(key=lambda j: j[1]["trial"])  # results.json's order
            name = _model(trials[0][1]) if len(c.jobs) == 1 else label
            cells.append(Cell(label, name, dataset, shots, tuple(d for d, _ in trials),
                              tuple(r for _, r in trials)))
    return cells


def _model(result: dict[str, Any]) -> str:
    """A sweep of one configuration has no differing overrides to name it by: name it by its model."""
    model = result.get("config", {}).get("model", {})
    return f"{model.get('name')}:{model['path']}" if model.get("path") else str(model.get("name", "default"))


def sweep_cells(sweep_dir: Path) -> tuple[list[Cell], list[str]]:
    """The sweep's cells, grouped as the collector groups its results files, and its failed, unfinished and
    missing jobs."""
    if sweep_dir.is_dir() and not (sweep_dir / "multirun.yaml").is_file():
        # collect() would take any folder above sweeps for one sweep; Hydra writes multirun.yaml into every sweep
        raise UserError(f"SWEEP_DIR: {sweep_dir} has no multirun.yaml, so it is not a sweep folder; pass the "
                        "folder a multirun wrote (hydra.sweep.dir, e.g. multirun/<date>/<time>)")
    c = collect(sweep_dir, write=False)
    return cells_of(c), c.problems
