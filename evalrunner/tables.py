"""A sweep's results tables: {dataset: [{shots, trials, mean, stddev}]}, one per configuration of the sweep.

A job's identity is its resolved config, never its folder name or the overrides that made it: jobs are grouped
by the values in their result.json, so `seed=42` passed at its default is the default config, and one job found in
two folders (a sweep folder extended with `trial=0,1`) counts once.
"""

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalrunner import sweep
from evalrunner.atomic import write_json_atomic
from evalrunner.folders import RUNTIME_KEYS, is_runtime_key

_AXES = ("shots", "trial")  # a table's rows and trials; the dataset is its third axis
Flat = frozenset[tuple[str, str]]  # a config's dotted keys and their JSON values
Group = tuple[Flat, Flat]  # (the config without its dataset, the dataset's keys that tell its variants apart)


@dataclass
class Collected:
    files: dict[str, Path] = field(default_factory=dict)  # group label -> results file written
    tables: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    jobs: dict[str, list[tuple[Path, dict[str, Any]]]] = field(default_factory=dict)  # label -> (job dir, result)
    problems: list[str] = field(default_factory=list)  # failed, unfinished, damaged, missing and conflicting jobs
    submissions: list[str] = field(default_factory=list)  # jobs on a split without public answers
    notes: list[str] = field(default_factory=list)  # one job found in several folders, counted once


def _flat(node: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict) and node:
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: json.dumps(node, sort_keys=True)}


def _dropped(key: str, config: dict[str, Any]) -> bool:
    if any(key == k or key.startswith(k + ".") for k in (*_AXES, *RUNTIME_KEYS)):
        return True
    # RICES settings do not touch a job whose demos are random (as its fingerprint says)
    return key.startswith("rices.") and config.get("demo_selection") != "rices"


def _split(result: dict[str, Any]) -> tuple[Flat, Flat]:
    """The job's config without the table's axes and speed-only keys: (all but the dataset, the dataset's keys)."""
    flat = {k: v for k, v in _flat(result["config"]).items() if not _dropped(k, result["config"])}
    rest = frozenset((k, v) for k, v in flat.items() if not k.startswith("dataset."))
    return rest, frozenset((k, v) for k, v in flat.items() if k.startswith("dataset."))


def _groups(jobs: list[sweep.Job]) -> dict[Group, list[sweep.Job]]:
    """Jobs of one config, whatever their dataset. Datasets differ in their own keys (coco has no vqa_variant), so
    a dataset's keys split a group only where two jobs of the same dataset differ in them."""
    split = [(_split(j.result), j) for j in jobs]
    variants: dict[tuple[Flat, str], set[Flat]] = defaultdict(set)
    for (rest, ds), j in split:
        variants[(rest, j.result["dataset"])].add(ds)
    groups: dict[Group, list[sweep.Job]] = defaultdict(list)
    for (rest, ds), j in split:
        seen = variants[(rest, j.result["dataset"])]
        shared = frozenset.intersection(*seen)
        groups[(rest, ds - shared)].append(j)
    return groups


def _shown(items: set[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v.strip(chr(34))}" for k, v in sorted(items))


def _overrides(job: sweep.Job) -> frozenset[str]:
    kept = set()
    for o in job.overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key not in ("dataset", *_AXES) and not is_runtime_key(key):
            kept.add(o.lstrip("+"))
    return frozenset(kept)


def _labels(groups: dict[Group, list[sweep.Job]]) -> dict[Group, str]:
    """Each config named by the overrides all its jobs share and the other configs lack; where overrides cannot
    tell two configs apart (a config file edited between runs), by the resolved values they differ in."""
    if len(groups) <= 1:  # none: every job failed, and only the problems are listed
        return {g: "all jobs" for g in groups}
    common = {g: frozenset.intersection(*map(_overrides, jobs)) for g, jobs in groups.items()}
    shared = frozenset.intersection(*common.values())
    labels = {g: ",".join(sorted(common[g] - shared)) or "default" for g in groups}
    counts = Counter(labels.values())
    clashing = [g for g in groups if counts[labels[g]] > 1]
    if clashing:
        values = {g: set(g[0] | g[1]) for g in clashing}
        same = set.intersection(*values.values())
        labels.update({g: _shown(values[g] - same) or "default" for g in clashing})
    return labels


def _identity(result: dict[str, Any]) -> str:
    if result.get("fingerprint"):
        return str(result["fingerprint"])
    return hashlib.sha256(json.dumps(result["config"], sort_keys=True).encode()).hexdigest()[:16]


def _cells(jobs: list[sweep.Job], out: Collected) -> list[sweep.Job]:
    """One job per (dataset, shots, trial): the same job in two folders counts once, two different ones none."""
    by_cell: dict[tuple[str, int, int], list[sweep.Job]] = defaultdict(list)
    for j in jobs:
        by_cell[(j.result["dataset"], j.result["shots"], j.result["trial"])].append(j)
    kept = []
    for (dataset, shots, trial), found in sorted(by_cell.items()):
        ids = {_identity(j.result) for j in found}
        names = " and ".join(str(j.dir) for j in found)
        if len(ids) > 1:
            out.problems.append(f"CONFLICT  {dataset} shots={shots} trial={trial}: {names} hold different configs "
                                f"(fingerprints {', '.join(sorted(ids))}); counted neither: move one folder away")
            continue
        if len(found) > 1:
            out.notes.append(f"SAME JOB  {dataset} shots={shots} trial={trial}: {names} (one resolved config); "
                             "counted once")
        kept.append(found[0])
    return kept


def table(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
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


def _file_safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9=,._+-]", "_", label)


def collect(sweep_dir: Path, write: bool = True) -> Collected:
    """The sweep's tables and problems; with `write`, also its results files, and no results file of an earlier
    state of the folder is left beside them (the report only reads a sweep)."""
    found = sweep.read(sweep_dir)
    out = Collected(problems=found.problems, submissions=found.submissions)
    groups = {g: _cells(jobs, out) for g, jobs in _groups(found.finished).items()}
    groups = {g: jobs for g, jobs in groups.items() if jobs}
    labels = _labels(groups)
    for g in sorted(groups, key=labels.__getitem__):
        label = labels[g]
        path = sweep_dir / ("results.json" if len(groups) == 1 else f"results.{_file_safe(label)}.json")
        out.jobs[label] = [(j.dir, j.result) for j in groups[g]]
        out.tables[label] = table([j.result for j in groups[g]])
        out.files[label] = path
    if write:
        for label, path in out.files.items():
            current, _ = sweep.read_json(path) if path.exists() else (None, None)
            if current != out.tables[label]:  # a rerun rewrites nothing
                write_json_atomic(path, out.tables[label])
        for stale in {*sweep_dir.glob("results.json"), *sweep_dir.glob("results.*.json")} - set(out.files.values()):
            stale.unlink()
    return out
