"""Predictions on disk: per-rank append-only partial files while generating, and atomic final JSON.

Each rank appends one JSON line per prediction to `partial/rank<r>.jsonl` and flushes after every batch, so a
killed or requeued job keeps all finished work. A rerun reads every partial file back (a half-written last line
is ignored and cut off before appending again).
"""

import json
import os
from pathlib import Path
from typing import IO

from evalrunner.atomic import write_atomic, write_json_atomic  # noqa: F401  (re-exported: the one atomic writer)

PARTIAL_DIR = "partial"


def _complete_lines(path: Path) -> tuple[list[bytes], int]:
    """The complete lines of a partial file and the byte length they span."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), end


def read_partials(job_dir: Path) -> dict[int, str]:
    done: dict[int, str] = {}
    for path in sorted((job_dir / PARTIAL_DIR).glob("rank*.jsonl")):
        lines, _ = _complete_lines(path)
        for line in lines:
            rec = json.loads(line)
            done.setdefault(int(rec["id"]), rec["prediction"])
    return done


class PartialWriter:
    def __init__(self, job_dir: Path, rank: int) -> None:
        path = job_dir / PARTIAL_DIR / f"rank{rank}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            _, end = _complete_lines(path)
            os.truncate(path, end)  # drop a line cut short by a kill
        self._f: IO[str] = open(path, "a", encoding="utf-8")

    def append(self, ids: list[int], predictions: list[str]) -> None:
        self._f.write("".join(json.dumps({"id": i, "prediction": p}) + "\n" for i, p in zip(ids, predictions)))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()
