"""Merge a sweep's per-job result.json files into results.json: {dataset: [{shots, trials, mean, stddev}]}.

Runs as a Hydra callback at the end of every multirun, and as `python -m evalrunner.collect SWEEP_DIR`, which is
the source of truth: the callback is skipped when the launching process dies, the command can be rerun any time.
The layers: evalrunner.sweep reads the job folders, evalrunner.tables groups them, evalrunner.report adds
intervals, and this module prints them; none imports torch or a model.
"""

import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from evalrunner.errors import UserError
from evalrunner.report.intervals import table_intervals
from evalrunner.tables import Collected, collect

__all__ = ["Collected", "CollectCallback", "collect", "main", "report"]


def report(c: Collected) -> str:
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
    lines += c.notes + c.submissions + c.problems
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
            raise SystemExit(f"{len(c.problems)} job(s) failed, damaged or missing; see above")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m evalrunner.collect SWEEP_DIR\n\n" + __doc__.splitlines()[0],
              file=sys.stderr if len(argv) != 1 else sys.stdout)
        return 2 if len(argv) != 1 else 0
    try:
        c = collect(Path(argv[0]))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report(c))
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
