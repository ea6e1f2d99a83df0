"""Merge a sweep's per-job result.json files into results.json: {dataset: [{shots, trials, mean, stddev}]}.

Runs as a Hydra callback at the end of every multirun, and as `python -m evalrunner.collect SWEEP_DIR`, which is
the source of truth: the callback is skipped when the launching process dies, the command can be rerun any time.
"""

import itertools
import json
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from evalrunner.config import RUNTIME_KEYS
from evalrunner.errors import UserError
from evalrunner.jobdir import FAILURE, RESULT
from evalrunner.predictions import write_json_atomic

_TABLE_KEYS = ("dataset", "shots", "trial")  # rows and trials of a results table


@dataclass
class Collected:
    files: dict[str, Path] = field(default_factory=dict)  # group label -> results file written
    tables: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    jobs: dict[str, list[tuple[Path, dict[str, Any]]]] = field(default_factory=dict)  # label -> (job dir, result)
    problems: list[str] = field(default_factory=list)  # failed, unfinished and missing jobs
    submissions: list[str] = field(default_factory=list)  # jobs on a split without public answers


def _expected_jobs(sweep_dir: Path) -> list[frozenset[str]] | None:
    """Every job the sweep asked for, as its set of overrides, expanded as Hydra's basic sweeper does."""
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return None
    task = yaml.safe_load(path.read_text())["hydra"]["overrides"]["task"]
    choices = []
    for o in OverridesParser.create().parse_overrides(task):
        key = o.get_key_element()
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        choices.append([f"{key}={v}" for v in values])
    return [frozenset(combo) for combo in itertools.product(*choices)]


def _config_overrides(overrides: list[str]) -> tuple[str, ...]:
    """The overrides that make a job's configuration: not the table's own axes, not the trial, not speed-only keys.

    Jobs that share these are trials of one configuration; any other difference (seed, query_set_size,
    vqa_variant, model.path, ...) is a different configuration and gets a results file of its own.
    """
    kept = []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key not in _TABLE_KEYS and key not in RUNTIME_KEYS:
            kept.append(o.lstrip("+"))
    return tuple(sorted(kept))


def _labels(signatures: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """Each configuration named by the overrides in which it differs from the others."""
    shared = set.intersection(*(set(s) for s in signatures)) if signatures else set()
    if len(signatures) == 1:
        return {signatures[0]: "all jobs"}
    return {s: ",".join(o for o in s if o not in shared) or "default" for s in signatures}


def _table(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        groups[r["dataset"]][r["shots"]].append(r)
    table: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(groups):
        rows = []
        for shots in sorted(groups[name]):
            scores = [r["score"] for r in sorted(groups[name][shots], key=lambda r: r["trial"])]
            rows.append({"shots": shots, "trials": scores, "mean": float(np.mean(scores)),
                         "stddev": float(np.std(scores))})
        table[name] = rows
    return table


def collect(sweep_dir: Path, write: bool = True) -> Collected:
    """The sweep's tables and problems; with `write`, also its results files (the report only reads a sweep)."""
    if not sweep_dir.is_dir():
        raise UserError(f"SWEEP_DIR: {sweep_dir} is not a directory; pass a multirun/<date>/<time> folder")
    job_dirs = sorted(p.parent for p in sweep_dir.rglob(".hydra") if p.parent != sweep_dir)
    if not job_dirs:
        raise UserError(f"SWEEP_DIR: {sweep_dir} holds no jobs (no */.hydra); pass the folder of a multirun sweep")
    out = Collected()
    by_config: dict[tuple[str, ...], list[tuple[Path, dict[str, Any]]]] = defaultdict(list)
    seen: set[frozenset[str]] = set()
    for d in job_dirs:
        overrides_file = d / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) or [] if overrides_file.exists() else []
        seen.add(frozenset(overrides))
        name = " ".join(overrides) or d.name
        log = next(iter(sorted(d.glob("*.log"))), d)
        if (d / RESULT).exists():
            result = json.loads((d / RESULT).read_text())
            if result.get("score") is None:
                out.submissions.append(f"SUBMISSION  {name}: no public answers; the submission file is in {d}")
            else:
                by_config[_config_overrides(overrides)].append((d, result))
        elif (d / FAILURE).exists():
            error = json.loads((d / FAILURE).read_text())["error"]
            out.problems.append(f"FAILED  {name}: {error.splitlines()[0]} (log: {log})")
        else:
            out.problems.append(f"UNFINISHED  {name}: no result.json (running, killed or lost; log: {log})")
    for combo in _expected_jobs(sweep_dir) or []:
        if combo not in seen:
            out.problems.append(f"MISSING  {' '.join(sorted(combo))}: the job never started")
    labels = _labels(sorted(by_config))
    for signature in sorted(by_config, key=labels.__getitem__):
        label = labels[signature]
        path = sweep_dir / ("results.json" if len(by_config) == 1 else f"results.{_file_safe(label)}.json")
        out.jobs[label] = by_config[signature]
        out.tables[label] = _table([r for _, r in by_config[signature]])
        fresh = not path.exists() or json.loads(path.read_text()) != out.tables[label]  # a rerun rewrites nothing
        if write and fresh:
            write_json_atomic(path, out.tables[label])
        out.files[label] = path
    return out


def _file_safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9=,._+-]", "_", label)


def report(c: Collected) -> str:
    from evalrunner.report.intervals import table_intervals  # the report's bootstrap (numpy only)

    intervals = table_intervals(c)
    lines = []
    for label, table in c.tables.items():
        shown = any(key[0] == label for key in intervals)  # a column only where jobs saved per-item scores
        lines.append(f"{label} -> {c.files[label]}")
        lines.append(f"  {'dataset':<12}{'shots':>6}  {'mean':>8}  {'stddev':>7}  "
                     + (f"{'95% interval':<18}  " if shown else "") + "trials")
        for dataset, rows in table.items():
            for r in rows:
                trials = " ".join(f"{s:.2f}" for s in r["trials"])
                iv = intervals.get((label, dataset, r["shots"]))
                ci = "n/a" if iv is None else f"[{iv[0]:.2f}, {iv[1]:.2f}]"
                lines.append(f"  {dataset:<12}{r['shots']:>6}  {r['mean']:>8.2f}  {r['stddev']:>7.2f}  "
                             + (f"{ci:<18}  " if shown else "") + trials)
    lines += c.submissions + c.problems
    return "\n".join(lines)


class CollectCallback(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if os.environ.get("RANK", "0") != "0":
            # Under torchrun every rank runs the sweep; only rank 0 has scored the last job when its sweep ends.
            return
        c = collect(Path(config.hydra.sweep.dir))
        print(report(c), flush=True)
        if c.problems:
            # SystemExit passes through Hydra's callback guard, so the sweep's exit status says a job failed.
            raise SystemExit(f"{len(c.problems)} job(s) failed or missing; see above")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m evalrunner.collect SWEEP_DIR", file=sys.stderr)
        return 2
    try:
        c = collect(Path(argv[0]))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report(c))
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
