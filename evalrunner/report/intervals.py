"""Intervals of a sweep's cells, and of the differences between the cells two sweeps share.

Each cell's generator is seeded by the report's seed and the cell's key, so a cell's interval does not depend on
which other cells the sweep holds yet (a partly finished sweep) or on the order they are computed in.
"""

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from evalrunner.errors import UserError
from evalrunner.report.bootstrap import Statistic, interval, replicates
from evalrunner.report.cells import Cell, Stats, cells_of, comparable, statistic
from evalrunner.tables import Collected

Loaded = dict[str, tuple[Statistic, str] | None]  # cell key -> what its interval resamples, and its kind
PROGRESS_WORK = 2 * 10**8  # item draws (about a second of work) above which a progress bar is shown


@dataclass(frozen=True)
class Diff:
    a: Cell  # this sweep's cell
    b: Cell  # the other sweep's
    delta: float  # a.mean - b.mean
    interval: tuple[float, float] | None  # paired 95% bootstrap interval of delta; None when refused
    refused: str | None  # why the cells cannot be compared

    @property
    def excludes_zero(self) -> bool:
        return self.interval is not None and (self.interval[0] > 0 or self.interval[1] < 0)


def load(cells: Sequence[Cell]) -> tuple[Loaded, list[str]]:
    """What each cell's interval resamples, and a DAMAGED line for each cell whose per-item files cannot be read:
    that cell is reported without an interval, the others as usual."""
    loaded: Loaded = {}
    problems = []
    for c in cells:
        try:
            loaded[c.key] = statistic(c)
        except UserError as e:
            loaded[c.key] = None
            problems.append(f"DAMAGED  {c.group} {c.dataset} shots={c.shots}: {e} (the cell has no interval)")
    return loaded, problems


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def _progress(sizes: list[int], resamples: int) -> tqdm:
    work = sum(sizes) * resamples
    return tqdm(total=len(sizes) * resamples, desc="bootstrap", unit="resample", disable=work < PROGRESS_WORK,
                dynamic_ncols=True, mininterval=0.5)


def cell_stats(cells: Sequence[Cell], loaded: Loaded, resamples: int, seed: int) -> list[Stats]:
    sizes = [len(f[0].ids) for c in cells if (f := loaded[c.key]) is not None]
    out = []
    with _progress(sizes, resamples) as bar:
        for c in cells:
            found = loaded[c.key]
            if found is None or len(found[0].ids) == 0:
                out.append(Stats(c, None, 0, None))
                continue
            reps = replicates([found[0]], resamples, _rng(seed, c.key), bar)[0]
            out.append(Stats(c, interval(reps), len(found[0].ids), found[1]))
    return out


def pair(a: Sequence[Cell], b: Sequence[Cell]) -> list[tuple[Cell, Cell]]:
    """The cells both sweeps hold. Two sweeps of one config group each (two checkpoints, say) pair by dataset and
    shots; otherwise the groups must match too."""
    single = len({c.group for c in a}) == 1 and len({c.group for c in b}) == 1

    def key(c: Cell) -> tuple[str, ...]:
        return (c.dataset, str(c.shots)) if single else (c.group, c.dataset, str(c.shots))

    other = {key(c): c for c in b}
    return [(c, other[key(c)]) for c in a if key(c) in other]


def diffs(pairs: Sequence[tuple[Cell, Cell]], loaded_a: Loaded, loaded_b: Loaded, resamples: int,
          seed: int) -> list[Diff]:
    checked = []
    for a, b in pairs:
        fa, fb = loaded_a[a.key], loaded_b[b.key]
        sa, sb = (None if f is None else f[0] for f in (fa, fb))
        checked.append((a, b, sa, sb, comparable(a, b, sa, sb)))
    sizes = [len(sa.ids) for _, _, sa, _, why in checked if why is None and sa is not None]
    out = []
    with _progress(sizes, resamples) as bar:
        for a, b, sa, sb, why in checked:
            delta = a.mean - b.mean
            if why is not None or sa is None or sb is None:
                out.append(Diff(a, b, delta, None, why))
                continue
            reps = replicates([sa, sb], resamples, _rng(seed, "diff|" + a.key), bar)
            out.append(Diff(a, b, delta, interval(reps[0] - reps[1]), None))
    return out


def table_intervals(c: Collected, resamples: int = 1000,
                    seed: int = 0) -> dict[tuple[str, str, int], tuple[float, float]]:
    """The report's interval of each row of the collector's tables that has per-item scores, keyed by (results
    label, dataset, shots). A job whose item scores cannot be read just gets none: the table must still print."""
    cells = cells_of(c)
    loaded, _ = load(cells)
    return {(s.cell.label, s.cell.dataset, s.cell.shots): s.interval
            for s in cell_stats(cells, loaded, resamples, seed) if s.interval is not None}
