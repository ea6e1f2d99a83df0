"""One mechanism for every derived-data cache (RICES features, dataset indexes): key, atomic write, lock, checksum.

A cache file is its payload followed by a footer (magic, payload length, SHA-256 of the payload). It is written to a
temporary file in the same folder and renamed into place, so a reader sees either nothing or a whole file; a file
whose footer is missing or whose checksum differs (a crash on a file system without atomic rename, a truncated copy,
bit rot) counts as absent and is rebuilt. Builders serialise on an flock(2) lock next to the file: the kernel drops
it when its holder dies, so a crashed builder never leaves a stale lock (on NFS, Linux emulates flock with
byte-range locks; Lustre needs the `flock` mount option).
"""

import fcntl
import hashlib
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from evalrunner.atomic import replacing

_MAGIC = b"EVRCACH1"
_FOOTER = struct.Struct("<8sQ32s")  # magic, payload length, sha256 of the payload
_CHUNK = 1 << 24
log = logging.getLogger(__name__)


def folder(setting: object, kind: str) -> Path:
    """The folder a config key names, or by default $XDG_CACHE_HOME/evalrunner/<kind> (~/.cache/evalrunner/<kind>)."""
    if setting is not None:
        return Path(os.path.expanduser(str(setting)))
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evalrunner" / kind


def key(files: Iterable[str | os.PathLike[str]], config: Mapping[str, Any]) -> str:
    """A hex digest of every file's path, size, mtime, inode and ctime (in order) and a JSON-able config.

    Size and mtime alone miss a rewrite that keeps both (`cp -p`, `rsync -a`, `tar x`): no tool can set ctime, and a
    replaced file has a new inode. Only stat(2) is read, so a key costs microseconds per file at any data size; a
    chmod or touch also counts as a change (a rebuild, never a stale read).
    Raises FileNotFoundError naming the first file that is missing.
    """
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for f in files:
        st = os.stat(f)
        h.update(f"{os.fspath(f)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_ctime_ns}\n".encode())
    return h.hexdigest()[:32]


class _HashingWriter:
    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes | memoryview) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)


def write(path: Path, fill: Callable[[Any], None]) -> None:
    """Write the payload that `fill(f)` writes to `f` (a file-like with only `.write`) atomically, with a footer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as f:
        w = _HashingWriter(f)
        fill(w)
        f.write(_FOOTER.pack(_MAGIC, w.size, w.sha.digest()))


def valid(path: Path) -> bool:
    """Whether `path` is a whole cache file: its footer is there and its payload matches the checksum."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < _FOOTER.size:
                return False
            f.seek(size - _FOOTER.size)
            magic, length, digest = _FOOTER.unpack(f.read(_FOOTER.size))
            if magic != _MAGIC or length != size - _FOOTER.size:
                return False
            f.seek(0)
            sha, left = hashlib.sha256(), length
            while left:
                block = f.read(min(_CHUNK, left))
                if not block:
                    return False
                sha.update(block)
                left -= len(block)
            return sha.digest() == digest
    except FileNotFoundError:
        return False


class Lock:
    """An exclusive lock on `<path>.lock`, shared by every process and host that sees the same file system."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".lock")
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} pid {os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """Who holds it, as the holder wrote it (best effort, for log messages)."""
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class CacheError(RuntimeError):
    """The cache folder can't be used (not writable, a build that left no valid file); raised on every process."""


def _decide(path: Path, lock: Lock, waiting_since: list[float]) -> str:
    if valid(path):
        return "ready"
    if lock._fd is not None:
        return f"error: the build finished but left no valid cache file at {path}"
    if lock.try_acquire():
        if valid(path):  # built by the holder we were waiting for
            return "ready"
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a builder that died
            stale.unlink(missing_ok=True)
        return "build"
    if time.monotonic() - waiting_since[0] > 30:
        log.info("waiting for %s to finish building %s", lock.holder(), path)
        waiting_since[0] = time.monotonic()
    return "wait"


def ensure(path: Path, build: Callable[[], None],
           agree: Callable[[Callable[[], str]], str] = lambda decide: decide(), poll_s: float = 0.5) -> None:
    """Return once `path` holds a valid cache file: it is there, or we build it holding the lock, or we wait for the
    process that holds it. A partial or corrupt file is rebuilt, never used.

    `build()` must write `path` with `write`. `agree(decide)` lets a group of processes (the ranks of a job) build
    together: it runs `decide` on one of them and returns that answer on all of them; `build` then runs on all.
    """
    lock, waiting_since = Lock(path), [float("-inf")]  # the first wait is logged at once

    def decide() -> str:
        try:
            return _decide(path, lock, waiting_since)
        except OSError as e:  # returned, not raised, so every process of the group learns of it
            return f"error: {e}"

    try:
        while True:
            state = agree(decide)
            if state.startswith("error: "):
                raise CacheError(state[len("error: "):])
            if state == "ready":
                return
            if state == "build":
                build()
            else:
                time.sleep(poll_s)
    finally:
        lock.release()
