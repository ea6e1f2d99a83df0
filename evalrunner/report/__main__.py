"""python -m evalrunner.report SWEEP_DIR [OTHER_SWEEP_DIR]: the report of a sweep, and its diff against another.

Writes report.md, report.html, report.json, scores_vs_shots.png and .svg into SWEEP_DIR, each only when its
content changed, and never writes into OTHER_SWEEP_DIR.
"""

import argparse
import json
import sys
from pathlib import Path

from evalrunner.atomic import write_atomic
from evalrunner.errors import UserError
from evalrunner.report import intervals, plot, render
from evalrunner.report.cells import sweep_cells


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically replace path with data unless it already holds exactly that; True when written."""
    if path.exists() and path.read_bytes() == data:
        return False
    write_atomic(path, data)
    return True


def report(sweep: Path, other: Path | None = None, resamples: int = 1000, seed: int = 0) -> list[Path]:
    """Write the report; returns the files it (re)wrote."""
    return write(sweep, other, resamples, seed)[0]


def write(sweep: Path, other: Path | None, resamples: int, seed: int) -> tuple[list[Path], list[str]]:
    """Write the report; returns the files it (re)wrote and the jobs it leaves out (failed, damaged, ...)."""
    if resamples < 1:
        raise UserError(f"--resamples={resamples}: give a positive number of bootstrap resamples (1000 or more)")
    cells, problems = sweep_cells(sweep)
    if not cells:
        raise UserError(f"SWEEP_DIR: {sweep} has no finished job yet; rerun the report once a job has finished")
    loaded, damaged = intervals.load(cells)
    problems = [*problems, *damaged]
    stats = intervals.cell_stats(cells, loaded, resamples, seed)
    diffs = None
    if other is not None:
        other_cells, _ = sweep_cells(other)
        pairs = intervals.pair(cells, other_cells)
        other_loaded, other_damaged = intervals.load([b for _, b in pairs])
        problems += other_damaged
        diffs = intervals.diffs(pairs, {a.key: loaded[a.key] for a, _ in pairs}, other_loaded, resamples, seed)
    title = str(sweep.resolve())
    other_name = None if other is None else str(other.resolve())
    png, svg = plot.figures(stats)
    doc = render.blocks(title, stats, problems, resamples, seed, diffs, other_name)
    outputs = {
        f"{render.FIGURE}.png": png,
        f"{render.FIGURE}.svg": svg,
        "report.md": render.markdown(doc).encode(),
        "report.html": render.page(doc, png).encode(),
        "report.json": (json.dumps(render.json_doc(title, stats, problems, resamples, seed, diffs, other_name),
                                   indent=1, ensure_ascii=False) + "\n").encode(),
    }
    return [sweep / name for name, data in outputs.items() if write_if_changed(sweep / name, data)], problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalrunner.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, metavar="SWEEP_DIR")
    parser.add_argument("other", type=Path, nargs="?", metavar="OTHER_SWEEP_DIR",
                        help="a second sweep: the report adds the differences of the cells both hold")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per cell (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    args = parser.parse_args(argv)
    try:
        written, problems = write(args.sweep, args.other, args.resamples, args.seed)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join([*problems, f"report: {args.sweep / 'report.html'} ({len(written)} file(s) written, the rest "
                                 "unchanged)"]))
    return 1 if problems else 0  # as the collector: a job left out of the report fails the command


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
