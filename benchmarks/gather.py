"""Gathers VQA predictions to rank 0 with evalrunner and with OpenFlamingo's pattern, timing both and measuring memory.

Run as `python benchmarks/gather.py [--n 1000000] [--repeats 3]` (`--smoke`: tiny sizes, for CI); it spawns
its own 2 gloo ranks on this machine.
Inputs are synthetic and seeded: `n` predictions of short VQA answers with question ids 262148000 + k, a small
fraction of them repeats of the first questions, as DistributedSampler's padding produces; rank r holds every
second one. Both methods must give rank 0 the same de-duplicated id -> answer mapping, which is asserted.

Every measurement runs in a fresh pair of processes, so one method's heap never raises the other's peak. Each rank
measures from a barrier to the de-duplicated result (None on rank 1):
- time: wall clock, perf_counter.
- memory: peak RSS during the gather minus RSS just before it. The kernel keeps the high-water mark (VmHWM in
  /proc/self/status) and resets it to the current RSS when "5" is written to /proc/self/clear_refs, so the peak is
  exact, transient buffers freed within one GIL-holding C call (json.loads, pickle.loads) included. Where that file
  is not writable, a thread samples /proc/self/statm every millisecond instead, which can miss such transients.
The median of the repeats is reported.
"""

import argparse
import gc
import itertools
import multiprocessing as mp
import os
import re
import socket
import statistics
import threading
import time
from typing import Any

import torch
import torch.distributed as dist

from evalrunner.distributed import Ranks, gather_predictions, init_ranks, shutdown

WORLD = 2
FIRST_QID = 262148000
METHODS = ("ours", "openflamingo")
_ANSWERS = (
    "yes|no|2|1|3|0|4|red|white|blue|black|green and white|dog|cat|tennis racket|baseball|pizza|"
    "kitchen|frisbee|left|right|wood|none|10:30|skateboarding|surfing|giraffe|umbrella|man|woman|many|standing|t-shirt|café"
).split("|")


def answer(k: int) -> str:
    # A fresh str per prediction, as a model's decode gives; one shared constant would let pickle's memo send it once.
    return _ANSWERS[(k * 2654435761 >> 7) % len(_ANSWERS)].encode().decode()


def shard(n: int, duplicates: int, rank: int) -> list[int]:
    """Rank's question indices: n - duplicates unique ones, padded with the first `duplicates` as DistributedSampler
    pads with its first items, then taken every WORLD-th."""
    indices = list(range(n - duplicates)) + list(range(duplicates))
    return indices[rank::WORLD]


class PeakRss:
    """Peak RSS of this process within the block minus its RSS on entry, in bytes."""

    def __enter__(self) -> "PeakRss":
        self.peak = 0
        self._sampler: threading.Thread | None = None
        self.start = _status_bytes("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self._sampled = self.start
            self._stop = threading.Event()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sampler is None:
            self.peak = _status_bytes("VmHWM") - self.start
            return
        self._stop.set()
        self._sampler.join()
        self.peak = self._sampled - self.start

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.001):
            with open("/proc/self/statm") as f:
                self._sampled = max(self._sampled, int(f.read().split()[1]) * page)


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    assert match is not None, field
    return int(match.group(1)) * 1024


def openflamingo_gather(ranks: Ranks, predictions: list[dict[str, Any]]) -> dict[int, str] | None:
    """OpenFlamingo's evaluate.py pattern: every rank receives every rank's pickled list; rank 0 flattens and keeps
    one answer per question id."""
    everyone: list[Any] = [None] * ranks.world
    dist.all_gather_object(everyone, predictions, group=ranks.group)
    if not ranks.is_main:
        return None
    return {p["question_id"]: p["answer"] for p in itertools.chain.from_iterable(everyone)}


def _worker(rank: int, method: str, n: int, duplicates: int, port: int, results: Any) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)  # two ranks share two cores
    ranks = init_ranks(timeout_s=300)
    indices = shard(n, duplicates, rank)
    if method == "ours":
        ids, texts = [FIRST_QID + k for k in indices], [answer(k) for k in indices]
        run = lambda: gather_predictions(ranks, ids, texts)  # noqa: E731
    else:
        predictions = [{"question_id": FIRST_QID + k, "answer": answer(k)} for k in indices]
        run = lambda: openflamingo_gather(ranks, predictions)  # noqa: E731
    del indices
    gc.collect()
    dist.barrier(group=ranks.group)
    with PeakRss() as memory:
        start = time.perf_counter()
        merged = run()
        seconds = time.perf_counter() - start
    correct = None
    if ranks.is_main:
        correct = merged == {FIRST_QID + k: answer(k) for k in range(n - duplicates)}
    results.put((method, rank, seconds, memory.peak, correct))
    shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(method: str, n: int, duplicates: int) -> dict[int, tuple[float, int]]:
    """{rank: (seconds, peak bytes)} from one fresh pair of processes; asserts rank 0's mapping is the expected one."""
    context = mp.get_context("spawn")
    results = context.Queue()
    port = _free_port()
    processes = [
        context.Process(target=_worker, args=(rank, method, n, duplicates, port, results)) for rank in range(WORLD)
    ]
    for p in processes:
        p.start()
    rows = [results.get(timeout=300) for _ in range(WORLD)]
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0, f"{method} rank exited with {p.exitcode}"
    by_rank = {rank: (seconds, peak) for _, rank, seconds, peak, _ in rows}
    correct = next(ok for _, rank, _, _, ok in rows if rank == 0)
    assert correct, f"{method}: rank 0's de-duplicated mapping differs from the expected one"
    return by_rank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="predictions over all ranks, duplicates included")
    parser.add_argument("--duplicates", type=float, default=0.001, help="fraction of n that are padding repeats")
    parser.add_argument("--repeats", type=int, default=3, help="fresh process pairs per method; the median is shown")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the benchmark runs and agrees")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.repeats = 20_000, 1
    duplicates = round(args.n * args.duplicates)
    runs: dict[str, list[dict[int, tuple[float, int]]]] = {m: [] for m in METHODS}
    for _ in range(args.repeats):
        for method in METHODS:  # interleaved, so drift in the machine's load hits both alike
            runs[method].append(measure(method, args.n, duplicates))
    median = {
        (m, r): (statistics.median(x[r][0] for x in runs[m]), statistics.median(x[r][1] for x in runs[m]))
        for m in METHODS
        for r in range(WORLD)
    }

    print(
        f"{args.n:,} predictions ({duplicates:,} padding repeats) over {WORLD} gloo ranks, "
        f"median of {args.repeats}; both methods gave rank 0 the same {args.n - duplicates:,} answers"
    )
    print("| method | rank | time (s) | peak memory (MB) |")
    print("|---|---:|---:|---:|")
    for (method, rank), (seconds, peak) in median.items():
        print(f"| {method} | {rank} | {seconds:.3f} | {peak / 2**20:.1f} |")
    goals = [("rank 0 time", 0, 0, 1.0), ("rank 0 peak memory", 0, 1, 0.5), ("rank 1 peak memory", 1, 1, 1 / WORLD)]
    for name, rank, column, limit in goals:
        ratio = median[("ours", rank)][column] / median[("openflamingo", rank)][column]
        verdict = "PASS" if ratio <= limit else "FAIL"
        print(f"ours/openflamingo {name}: {ratio:.3f} (goal <= {limit:.2f}) {verdict}")


if __name__ == "__main__":
    main()
