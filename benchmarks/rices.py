"""RICES retrieval: 5,000 queries against a 100,000-image pool on CPU, evalrunner vs a brute-force reference and vs
OpenFlamingo's way (`eval/rices.py`: a float32 similarity matrix, then a full argsort per query).

Run as `python benchmarks/rices.py [--pool 100000] [--queries 5000] [--dim 768] [--shots 32]` (`--smoke`: tiny sizes,
for CI). Features are seeded random unit vectors. 1% of the pool rows are exact copies of other rows (the same image
twice: exact ties, to be broken by pool index) and 1% are copies moved by 1e-7 (near-ties below float32 noise).
- ours: `evalrunner.demos.rices.retrieve`, chunked so the similarity block stays at 64 MiB.
- reference: every similarity in float64 (each row summed on its own), a full sort by (similarity, index), for the
  first `--check` queries; ours must equal it exactly, or the script exits 1.
- OpenFlamingo: float32 matrix product and `argsort(descending=True)[:k]`, timed on a slice and scaled; its
  disagreements with the reference are counted (it breaks ties by whatever the sort does), not asserted.
Times are wall clock (perf_counter) on however many threads torch uses here (printed), after a warm-up; ours also
reports CPU seconds (process_time), which a shared machine's load doesn't inflate. The matrix product takes most of
our time, so wall time is about CPU seconds / cores.
"""

import argparse
import sys
import time

import numpy as np
import torch

from evalrunner.demos.rices import retrieve


def features(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    copies = rng.choice(n, size=(2, n // 100), replace=False)
    x[copies[0]] = x[copies[1]]
    near = rng.choice(n, size=(2, n // 100), replace=False)
    x[near[0]] = x[near[1]] + rng.standard_normal((n // 100, d), dtype=np.float32) * 1e-7
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference(queries: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    out = []
    for q in queries.astype(np.float64):
        sims = np.concatenate([(block.astype(np.float64) * q).sum(axis=1) for block in np.array_split(pool, 20)])
        out.append(np.lexsort((np.arange(len(pool)), -sims))[:k])
    return np.array(out)


def openflamingo(queries: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    pool_t = torch.from_numpy(pool)
    out = []
    for s in range(0, len(queries), 64):
        sims = torch.from_numpy(queries[s : s + 64]) @ pool_t.T
        out.append(sims.argsort(dim=1, descending=True)[:, :k].numpy())
    return np.concatenate(out)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--pool", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=5000)
    p.add_argument("--dim", type=int, default=768)  # ViT-L/14, OpenFlamingo's default RICES encoder
    p.add_argument("--shots", type=int, default=32)
    p.add_argument("--check", type=int, default=50, help="queries checked against the brute-force reference")
    p.add_argument("--of-queries", type=int, default=256, help="queries timed for OpenFlamingo's way")
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args()
    if a.smoke:
        a.pool, a.queries, a.dim, a.check, a.of_queries = 5000, 400, 64, 400, 400
    pool = features(a.pool, a.dim, 0)
    rng = np.random.default_rng(1)
    queries = np.concatenate([features(a.queries - 20, a.dim, 2), pool[rng.choice(a.pool, 20)]])
    retrieve(queries[:8], pool, a.shots)  # warm-up: thread pool, allocator

    t, cpu = time.perf_counter(), time.process_time()
    ours, _ = retrieve(queries, pool, a.shots)
    ours_s, ours_cpu = time.perf_counter() - t, time.process_time() - cpu
    t = time.perf_counter()
    ref = reference(queries[: a.check], pool, a.shots)
    ref_s = (time.perf_counter() - t) * a.queries / a.check
    t = time.perf_counter()
    of = openflamingo(queries[: a.of_queries], pool, a.shots)
    of_s = (time.perf_counter() - t) * a.queries / a.of_queries

    equal = bool((ours[: a.check] == ref).all())
    of_off = int((of[: a.check] != ref[: len(of)][: a.check]).any(axis=1).sum())
    gflop = 2 * a.queries * a.pool * a.dim / 1e9
    print(f"{a.queries} queries x {a.pool} pool x {a.dim} dims, top {a.shots}, {torch.get_num_threads()} threads")
    print(f"  ours          {ours_s:8.2f} s  ({ours_cpu:.2f} CPU-s over all threads; {gflop / ours_cpu:.0f} GFLOP/s "
          "per busy core in the matrix product)")
    print(f"  openflamingo  {of_s:8.2f} s  (scaled from {a.of_queries} queries)  ratio {of_s / ours_s:.1f}x")
    print(f"  reference     {ref_s:8.2f} s  (scaled from {a.check} queries)  ratio {ref_s / ours_s:.1f}x")
    print(f"  ours == reference on {a.check} queries: {equal}; OpenFlamingo's order differs on {of_off} of them")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
