"""What a job directory already holds: nothing, finished results of this config, or partial work to resume.

A config's fingerprint is the hash of its resolved form without the keys that only change speed, so a rerun
in place finds its own results and a different config is refused instead of overwriting them.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

from evalrunner.errors import UserError
from evalrunner.folders import RUNTIME_KEYS
from evalrunner.predictions import PARTIAL_DIR, write_json_atomic

RESULT = "result.json"
PREDICTIONS = "predictions.json"
DEMOS = "demos.json"  # test item id -> its demos' ids in prompt order
ITEM_SCORES = "item_scores.json"  # id -> the item's score, for bootstrap intervals in the report
REPORT_DATA = "report_data.json"  # what else the report needs, e.g. ROC-AUC's true labels, so it never loads data
FAILURE = "error.json"
_STAMP = "fingerprint.json"


def fingerprint(resolved: dict[str, Any], batch_invariant: bool = False) -> str:
    """The config's hash without its speed-only keys. batch_size counts as speed-only only for a model whose output
    does not depend on its batch: otherwise a rerun with another batch_size would mix two batchings in one job."""
    cfg = json.loads(json.dumps(resolved))
    for key in RUNTIME_KEYS if batch_invariant else [k for k in RUNTIME_KEYS if k != "batch_size"]:
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node.get(p, {})
        node.pop(leaf, None)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def _refuse(job_dir: Path, what: str) -> UserError:
    return UserError(f"{job_dir} holds {what} of a different config; pick a new hydra.run.dir / hydra.sweep.dir "
                     "or move that directory away (nothing was overwritten)")


def finished_result(job_dir: Path, fp: str) -> dict[str, Any] | None:
    """The result of this config if the job already finished here; raises if the directory is another config's."""
    result = job_dir / RESULT
    if result.exists():
        try:
            done = json.loads(result.read_text())
        except json.JSONDecodeError:
            raise UserError(f"{result} is malformed; move it away to rerun this job") from None
        if done.get("fingerprint") != fp:
            raise _refuse(job_dir, "results")
        return done
    stamp = job_dir / PARTIAL_DIR / _STAMP
    if stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") != fp:
        raise _refuse(job_dir, "partial predictions")
    return None


def claim(job_dir: Path, fp: str) -> None:
    """Stamp the partial predictions with the config they belong to, before any is written."""
    (job_dir / PARTIAL_DIR).mkdir(parents=True, exist_ok=True)
    (job_dir / FAILURE).unlink(missing_ok=True)
    write_json_atomic(job_dir / PARTIAL_DIR / _STAMP, {"fingerprint": fp})
