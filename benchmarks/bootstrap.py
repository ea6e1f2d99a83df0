"""Times the report's bootstrap of a cell against per-resample loops, at full evaluation scale.

Run as `python benchmarks/bootstrap.py` (`--smoke`: tiny sizes, for CI). A VQAv2-sized cell (200,000 items x 3
trials, 1,000 resamples) is resampled by the report's vectorised code and by a loop over resamples drawing the
same indices; their replicates must agree. lm-eval's pattern (pure-Python `random.choices` per resample, as its
`bootstrap_stderr`) is timed on a few resamples and scaled to the same count. ROC-AUC (a HatefulMemes-sized
cell) is checked against a pairwise count on the first resamples. Peak memory is tracemalloc's peak.
"""

import argparse
import random
import statistics
import sys
import time
import tracemalloc

import numpy as np

from evalrunner.report.bootstrap import ItemMeans, RocAuc, interval, replicates


def _timed(f):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    start = time.perf_counter()
    out = f()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, elapsed, peak


def _loop(scores: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = scores.shape[1]
    return np.array([np.mean([s[idx].mean() for s in scores]) for idx in
                     (rng.integers(0, n, size=n) for _ in range(resamples))])


def _lm_eval_pattern(scores: np.ndarray, resamples: int) -> float:
    rnd = random.Random(0)
    trials = [s.tolist() for s in scores]
    start = time.perf_counter()
    for _ in range(resamples):
        picks = rnd.choices(range(len(trials[0])), k=len(trials[0]))
        statistics.fmean(statistics.fmean(t[i] for i in picks) for t in trials)
    return time.perf_counter() - start


def _pairwise_auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y], p[~y]
    return 100 * ((pos[:, None] > neg).sum() + 0.5 * (pos[:, None] == neg).sum()) / (len(pos) * len(neg))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the benchmark runs and agrees")
    args = parser.parse_args()
    n, trials, resamples, lm_resamples = (2_000, 3, 200, 5) if args.smoke else (200_000, 3, 1_000, 10)
    gen = np.random.default_rng(1)
    # VQA-like per-item scores: 0, 30, 60, 90 or 100, correlated across trials through a per-item difficulty
    difficulty = gen.random(n)
    scores = np.choose(np.clip((difficulty[None] * 5 + gen.normal(0, 0.5, (trials, n))).astype(int), 0, 4),
                       [0.0, 30.0, 60.0, 90.0, 100.0])
    stat = ItemMeans(np.arange(n), scores, np.ones_like(scores, dtype=bool))

    ours, t_ours, mem_ours = _timed(lambda: replicates([stat], resamples, np.random.default_rng(7))[0])
    ref, t_loop, mem_loop = _timed(lambda: _loop(scores, resamples, 7))
    t_lm = _lm_eval_pattern(scores, lm_resamples) * resamples / lm_resamples
    ok = bool(np.allclose(ours, ref, rtol=1e-12, atol=0)) and np.allclose(interval(ours), interval(ref), rtol=1e-12)
    print(f"mean over trials: {n:,} items x {trials} trials, {resamples:,} resamples, "
          f"interval {interval(ours)[0]:.3f}..{interval(ours)[1]:.3f}; replicates equal the loop's: {ok}")
    print(f"{'':<34}{'time (s)':>10}{'peak MB':>10}{'ratio':>8}")
    print(f"{'evalrunner (vectorised, chunked)':<34}{t_ours:>10.2f}{mem_ours / 1e6:>10.1f}{1:>8.2f}")
    print(f"{'numpy loop over resamples':<34}{t_loop:>10.2f}{mem_loop / 1e6:>10.1f}{t_loop / t_ours:>8.1f}")
    print(f"{'lm-eval pattern (scaled)':<34}{t_lm:>10.2f}{'':>10}{t_lm / t_ours:>8.1f}")

    m = 500 if args.smoke else 2_000
    label = gen.random(m) < 0.375
    proba = np.round(np.clip(label * 0.2 + gen.random((trials, m)) * 0.8, 0, 1), 3)  # rounded: ties occur
    auc = RocAuc(np.arange(m), proba, np.broadcast_to(label, (trials, m)), np.ones((trials, m), dtype=bool))
    reps, t_auc, mem_auc = _timed(lambda: replicates([auc], resamples, np.random.default_rng(3))[0])
    check = 20
    rng = np.random.default_rng(3)
    idx = rng.integers(0, m, size=(check, m))
    start = time.perf_counter()
    ref_auc = np.array([np.mean([_pairwise_auc(p[i], label[i]) for p in proba]) for i in idx])
    t_ref_auc = (time.perf_counter() - start) * resamples / check
    auc_ok = bool(np.allclose(reps[:check], ref_auc, rtol=1e-12, atol=0))
    print(f"ROC-AUC: {m:,} items x {trials} trials, {resamples:,} resamples: {t_auc:.2f} s, "
          f"{mem_auc / 1e6:.1f} MB peak; pairwise count per resample (scaled) {t_ref_auc:.2f} s, "
          f"ratio {t_ref_auc / t_auc:.1f}; first {check} replicates equal: {auc_ok}")
    return 0 if ok and auc_ok else 1


if __name__ == "__main__":
    sys.exit(main())
