"""Rank set-up and the collectives a job needs: agree on a value, check every rank is healthy, gather to rank 0.

A job runs as one process, under torchrun (env:// variables), or as submitit tasks (local or SLURM). Neither
launcher sets torch's variables, so submitit's environment is exported first. Every wait on another rank is bounded
by `timeout_s`, so a rank that dies fails the job instead of hanging it.
"""

import atexit
import gc
import json
import logging
import os
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from evalrunner.errors import UserError

log = logging.getLogger(__name__)
_ranks: "Ranks | None" = None
# The only reference we keep to a process group. A ProcessGroupGloo still referenced when the interpreter finalizes
# is destroyed after Python is gone, and its worker threads abort the process ("terminate called without an active
# exception"), so shutdown() drops this and destroys the groups while Python is still alive.
_cpu_group: Any = None


@dataclass
class Ranks:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    timeout: timedelta = timedelta(seconds=600)
    healthy: bool = True  # False once a rank stopped answering: leaving then waits for nobody
    checks: int = 0  # health checks so far, the same count on every rank
    peers: list[tuple[str, int]] = field(default_factory=list)  # every rank's (host, pid), to tell who is gone

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def group(self) -> Any:
        """A gloo group for CPU-side collectives, also when the default backend is nccl."""
        return _cpu_group


def _export_submitit_env() -> None:
    if "RANK" in os.environ:
        return
    try:
        import submitit

        submitit.JobEnvironment()
    except RuntimeError:
        return  # not inside a submitit job
    env = submitit.helpers.TorchDistributedEnvironment()
    if env.world_size == 1:
        return
    if "MASTER_PORT" not in os.environ:
        # submitit draws the port from 20000-60000, which overlaps Linux's ephemeral ports (32768-60999): a port
        # some connection holds makes rank 0's store fail to bind while the other ranks wait for it. Every rank
        # of a job draws the same port from its job id, below that range.
        env.master_port = random.Random(submitit.JobEnvironment().job_id).randint(20000, 32767)
    env.master_addr = os.environ.get("MASTER_ADDR", env.master_addr)  # a cluster's own setting is kept
    env.export(set_cuda_visible_devices=False, overwrite=True)  # a stray WORLD_SIZE, say, must not stop the job


def init_ranks(timeout_s: float) -> Ranks:
    """This process's rank. The process group is made once per process and kept for the next job of a sweep:
    tearing it down and re-making it between jobs races with the other ranks."""
    global _ranks
    if _ranks is not None:
        return _ranks
    _export_submitit_env()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=timeout_s)
    if world == 1:
        return Ranks(0, 1, 0, device, timeout=timeout)
    global _cpu_group
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    _cpu_group = dist.new_group(backend="gloo", timeout=timeout) if cuda else dist.group.WORLD
    _ranks = Ranks(rank, world, local_rank, device, timeout)
    _ranks.peers = all_gather_object(_ranks, (socket.gethostname(), os.getpid()))
    atexit.register(shutdown)
    return _ranks


def shutdown() -> None:
    """Leave together, then destroy the groups while the interpreter is alive (registered with atexit).

    Rank 0 scores after the others are done, so without the barrier the other ranks would tear down their groups
    while rank 0 still holds connections to them. The barrier is bounded by dist_timeout_s, and skipped once a rank
    is known to be gone.
    """
    global _ranks, _cpu_group
    ranks, _ranks = _ranks, None
    if ranks is None or not dist.is_initialized():
        return
    try:
        if ranks.healthy:
            dist.monitored_barrier(group=_cpu_group, timeout=ranks.timeout, wait_all_ranks=True)
    except RuntimeError as e:
        log.warning("rank %d: leaving without the other ranks: %s", ranks.rank, str(e).splitlines()[0])
    finally:
        _cpu_group = None
        dist.destroy_process_group()
        gc.collect()


def broadcast(ranks: Ranks, value: Any) -> Any:
    """Rank 0's value, on every rank."""
    if ranks.world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, group=ranks.group)
    return box[0]


def all_gather_object(ranks: Ranks, value: Any) -> list[Any]:
    """Every rank's value, in rank order, on every rank."""
    if ranks.world == 1:
        return [value]
    values: list[Any] = [None] * ranks.world
    dist.all_gather_object(values, value, group=ranks.group)
    return values


_USER_ERROR = "UserError: "


def check_all_healthy(ranks: Ranks, error: str | None) -> None:
    """Raise on every rank if any rank failed or stopped answering, naming the rank(s). `error` is a rank's
    "<exception type>: <message>"; a UserError that every rank raised alike is raised again as one."""
    if ranks.world == 1:
        if error:
            raise RuntimeError(f"rank 0 failed: {error}")
        return
    ranks.checks += 1
    try:
        # Names the ranks that never arrive (dead or hung) instead of blocking forever.
        dist.monitored_barrier(group=ranks.group, timeout=ranks.timeout, wait_all_ranks=True)
    except RuntimeError as e:
        ranks.healthy = False
        raise RuntimeError(f"rank {ranks.rank}: other rank(s) did not answer within "
                           f"{ranks.timeout.total_seconds():.0f} s (dist_timeout_s): {_verdict(ranks, e)}") from None
    errors: list[Any] = [None] * ranks.world
    dist.all_gather_object(errors, error, group=ranks.group)
    failed = [f"rank {r}: {e}" for r, e in enumerate(errors) if e]
    said = set(errors)
    if len(said) == 1 and (only := said.pop()) and only.startswith(_USER_ERROR):
        raise UserError(only.removeprefix(_USER_ERROR))  # the same bad input on every rank: said once, in one line
    if failed:
        raise RuntimeError("; ".join(failed))


def gone(ranks: Ranks, wait_s: float = 10.0) -> list[int]:
    """The ranks on this host whose process has exited, waiting up to `wait_s` for one to be reaped: gloo can
    notice a closed connection while the dead process is still being torn down."""
    host = socket.gethostname()
    deadline = time.monotonic() + wait_s
    while True:
        dead = [r for r, (h, pid) in enumerate(ranks.peers) if h == host and r != ranks.rank and not _alive(pid)]
        if dead or time.monotonic() > deadline:
            return dead
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")  # a zombie has exited, only not yet reaped


def _named(ranks: Ranks, detail: str) -> str:
    """`detail`, led by the ranks found gone: gloo names them only when the barrier timed out, not when it saw a
    connection close ("Connection closed by peer")."""
    barrier = re.search(r"Ranks? ([\d, ]+) failed to pass monitoredBarrier", detail)
    dead = [int(r) for r in re.findall(r"\d+", barrier.group(1))] if barrier else gone(ranks)
    if not dead:
        return f"no rank on this host is gone ({detail})"
    return f"Ranks {', '.join(map(str, dead))} did not answer ({detail})"


def _verdict(ranks: Ranks, e: BaseException) -> str:
    """Which ranks did not arrive, the same on every rank: rank 0's barrier knows best, so it posts its verdict in
    the store; the other ranks read it, or, with rank 0 gone (it may host the store), probe who is gone."""
    # gloo leads with its source position ("[.../pair.cc:553] Connection closed by peer ...")
    detail = re.sub(r"^\[[^\]]*\]:? *", "", str(e).splitlines()[0]) if str(e) else type(e).__name__
    key = f"evalrunner/unhealthy/{ranks.checks}"
    try:
        store = dist.distributed_c10d._get_default_store()
        if ranks.is_main:
            verdict = _named(ranks, detail)
            store.set(key, verdict)
            return verdict
        store.wait([key], timedelta(seconds=10))
        return store.get(key).decode()
    except (RuntimeError, ValueError, AttributeError):  # no store, or rank 0 (which may host it) is gone
        if ranks.is_main:
            return _named(ranks, detail)
        dead = gone(ranks, wait_s=2.0)
        return f"Ranks {', '.join(map(str, dead or [0]))} did not answer (rank 0 posted no verdict: {detail})"


def explain(ranks: Ranks, e: BaseException) -> str:
    """An error of a collective other than the health check, with the ranks found gone (gloo names none)."""
    message = f"{type(e).__name__}: {e}"
    if ranks.world == 1 or not isinstance(e, dist.DistError):
        return message
    dead = gone(ranks, wait_s=5.0)
    ranks.healthy = False
    return f"{message}; Ranks {', '.join(map(str, dead))} are gone" if dead else message


def _encode(ids: list[int], texts: list[str]) -> tuple[int, Callable[[np.ndarray], None]]:
    """(buffer size, a function writing the buffer): header n and table length, int64 ids, int32 codes, JSON table.

    VQA answers repeat heavily ("yes", "2"), so each distinct text is sent once and referred to by its int32 code;
    rank 0 then builds each distinct str once instead of once per prediction.
    """
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int32, count=len(texts))
    table = json.dumps(list(index)).encode()
    n = len(ids)

    def fill(raw: np.ndarray) -> None:
        raw[:16].view(np.int64)[:] = (n, len(table))
        raw[16 : 16 + 8 * n].view(np.int64)[:] = ids
        raw[16 + 8 * n : 16 + 12 * n].view(np.int32)[:] = codes
        raw[16 + 12 * n : 16 + 12 * n + len(table)] = np.frombuffer(table, dtype=np.uint8)

    return 16 + 12 * n + len(table), fill


def _merge(raw: np.ndarray, merged: dict[int, str]) -> None:
    n, table_len = (int(x) for x in raw[:16].view(np.int64))
    table = json.loads(raw[16 + 12 * n : 16 + 12 * n + table_len].tobytes())
    # memoryviews yield one Python int at a time, where .tolist() would hold N of them at once
    ids = raw[16 : 16 + 8 * n].view(np.int64).data
    codes = raw[16 + 8 * n : 16 + 12 * n].view(np.int32).data
    for i, c in zip(ids, codes):
        merged.setdefault(i, table[c])
    ids.release()
    codes.release()


def gather_predictions(ranks: Ranks, ids: list[int], texts: list[str]) -> dict[int, str] | None:
    """Every rank's (id, text) pairs on rank 0, de-duplicated by id (first rank, first position wins); None on others.

    Each rank sends one compact byte buffer (int64 ids, int32 text codes, a JSON table of distinct texts) instead of
    pickled dicts, so rank 0 holds the N predictions once and the other ranks only their own shard.
    """
    if ranks.world == 1:
        return dict(zip(ids, texts))
    size, fill = _encode(ids, texts)
    largest = torch.tensor([size], dtype=torch.int64)
    dist.all_reduce(largest, op=dist.ReduceOp.MAX, group=ranks.group)
    # dist.gather needs equal sizes: the padded buffer is allocated once and written in place, never copied
    padded = torch.empty(int(largest.item()), dtype=torch.uint8)
    fill(padded.numpy())
    del fill
    bufs = [torch.empty_like(padded) for _ in range(ranks.world)] if ranks.is_main else None
    dist.gather(padded, bufs, dst=0, group=ranks.group)
    del padded
    if bufs is None:
        return None
    merged: dict[int, str] = {}
    while bufs:
        _merge(bufs.pop(0).numpy(), merged)
    return merged


def gather_arrays(ranks: Ranks, array: np.ndarray) -> list[np.ndarray] | None:
    """Every rank's 2-D float32 array on rank 0, in rank order; None on the others. Row counts may differ, and a rank
    with nothing to send passes an array of 0 rows (any width)."""
    if ranks.world == 1:
        return [array]
    shape = torch.tensor(array.shape, dtype=torch.int64)
    shapes = [torch.empty_like(shape) for _ in range(ranks.world)]
    dist.all_gather(shapes, shape, group=ranks.group)
    rows, cols = max(int(s[0]) for s in shapes), max(int(s[1]) for s in shapes)
    # dist.gather needs equal sizes: pad every array to the largest
    padded = torch.zeros((rows, cols), dtype=torch.float32)
    if array.size:
        padded[: array.shape[0]] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    bufs = [torch.empty_like(padded) for _ in range(ranks.world)] if ranks.is_main else None
    dist.gather(padded, bufs, dst=0, group=ranks.group)
    if bufs is None:
        return None
    return [b[: int(s[0])].numpy() for b, s in zip(bufs, shapes)]
