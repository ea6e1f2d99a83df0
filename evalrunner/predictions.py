"""Predictions on disk: per-rank append-only partial files while generating, and atomic final JSON.

Each rank appends one JSON line per prediction to `partial/rank<r>.jsonl` and flushes after every batch, so a
killed or requeued job keeps all finished work. A rerun reads every partial file back up to its first damaged
line (half-written, or NUL bytes after a crash); the rest is cut off before appending again and its batches redone.
"""

import json
import logging
import os
from pathlib import Path
from typing import IO

from evalrunner.atomic import write_atomic, write_json_atomic  # noqa: F401  (re-exported: the one atomic writer)

PARTIAL_DIR = "partial"
log = logging.getLogger("evalrunner")


def _record(line: bytes) -> tuple[int, str] | None:
    try:
        rec = json.loads(line)
        return int(rec["id"]), str(rec["prediction"])
    except (ValueError, KeyError, TypeError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


def _whole_records(path: Path) -> tuple[list[tuple[int, str]], int]:
    """The records of a partial file up to its first damaged line, and the byte length they span.

    A kill mid-write leaves half a line; a crash of the machine can leave a run of NUL bytes where the file system
    had allocated blocks it never wrote. Whatever follows a damaged line is dropped too: its batches are redone.
    """
    data = path.read_bytes()
    records: list[tuple[int, str]] = []
    end = 0
    while (newline := data.find(b"\n", end)) != -1:
        rec = _record(data[end:newline])
        if rec is None:
            break
        records.append(rec)
        end = newline + 1
    if data.find(b"\n", end) != -1:  # more than a torn last line
        log.warning("%s: dropping a damaged line and the %d bytes after it; their batches are redone", path,
                    len(data) - end)
    return records, end


def read_partials(job_dir: Path) -> dict[int, str]:
    done: dict[int, str] = {}
    for path in sorted((job_dir / PARTIAL_DIR).glob("rank*.jsonl")):
        for i, prediction in _whole_records(path)[0]:
            done.setdefault(i, prediction)
    return done


class PartialWriter:
    def __init__(self, job_dir: Path, rank: int) -> None:
        path = job_dir / PARTIAL_DIR / f"rank{rank}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            _, end = _whole_records(path)
            os.truncate(path, end)  # drop a line cut short by a kill, or damaged, and all after it
        self._f: IO[str] = open(path, "a", encoding="utf-8")

    def append(self, ids: list[int], predictions: list[str]) -> None:
        self._f.write("".join(json.dumps({"id": i, "prediction": p}) + "\n" for i, p in zip(ids, predictions)))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()
