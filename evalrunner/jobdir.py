"""What a job directory already holds: nothing, finished results of this config, or partial work to resume.

A config's fingerprint is the hash of its resolved form without the keys that only change speed, and of the identity
of the data it read (the dataset index's key), so a rerun in place finds its own results, a different config is
refused instead of overwriting them, and a rerun after a data file changed is refused instead of mixing old and new.
The check and the claim happen under one lock that the job holds until it ends, so two runs never share a folder.
"""

import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
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
LOCK = ".evalrunner.lock"
_STAMP = "fingerprint.json"


class InUse(UserError):
    """The folder is another live run's: nothing may be written into it, not even this run's error."""


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


def with_data(config_fp: str, data_digest: str | None) -> str:
    """The job's fingerprint: its config's and its data's. Without a known data identity, the config's alone."""
    if data_digest is None:
        return config_fp
    return hashlib.sha256(f"{config_fp}\0{data_digest}".encode()).hexdigest()[:16]


@contextmanager
def locked(job_dir: Path) -> Iterator[None]:
    """Hold the job directory for this run; a second run into it, of any config, is refused at once."""
    job_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(job_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise InUse(f"{job_dir} is in use by another run ({holder}); wait for it to end, or pick a new "
                            "hydra.run.dir / hydra.sweep.dir (nothing was changed)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; a killed run's lock goes with its process


def _refuse(job_dir: Path, what: str) -> UserError:
    return UserError(f"{job_dir} holds {what} of a different config; pick a new hydra.run.dir / hydra.sweep.dir "
                     "or move that directory away (nothing was overwritten)")


def _data_changed(job_dir: Path, what: str) -> UserError:
    return UserError(f"{job_dir} holds {what} of this config made from other data (a dataset file changed since); "
                     "to score the new data, move that directory away or pick a new hydra.run.dir / hydra.sweep.dir "
                     "(nothing was overwritten)")


def _check(job_dir: Path, stamp: dict[str, Any], fp: str, config_fp: str, what: str) -> None:
    if stamp.get("fingerprint") == fp:
        return
    if stamp.get("config_fingerprint") == config_fp:
        raise _data_changed(job_dir, what)
    raise _refuse(job_dir, what)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path} is malformed; move it away to rerun this job") from None


def finished_result(job_dir: Path, fp: str, config_fp: str | None = None) -> dict[str, Any] | None:
    """The result of this job if it already finished here; raises if the directory is another config's or holds
    work made from other data."""
    config_fp = config_fp or fp
    result = job_dir / RESULT
    if result.exists():
        done = _read(result)
        _check(job_dir, done, fp, config_fp, "results")
        return done
    stamp = job_dir / PARTIAL_DIR / _STAMP
    if stamp.exists():
        _check(job_dir, _read(stamp), fp, config_fp, "partial predictions")
    return None


def claim(job_dir: Path, fp: str, config_fp: str | None = None) -> None:
    """Stamp the partial predictions with the job they belong to, before any is written."""
    (job_dir / PARTIAL_DIR).mkdir(parents=True, exist_ok=True)
    (job_dir / FAILURE).unlink(missing_ok=True)
    write_json_atomic(job_dir / PARTIAL_DIR / _STAMP, {"fingerprint": fp, "config_fingerprint": config_fp or fp})
