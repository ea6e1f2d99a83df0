"""A dataset's parsed items in one memory-mapped file, built once and shared by every job and rank.

Parsing a benchmark's official JSON costs tens of seconds and gigabytes at full scale, on every rank of every job.
The index holds the same items as flat arrays: int ids, and indexes into one deduplicated string table (utf-8
bytes and their offsets) for image paths, questions, answers and the ragged lists of references. A job maps it and
builds an Item only for the positions it reads, so its memory holds its test subset and query set, not the split.

The file is an evalrunner.cache file (atomic, checksummed, built under a lock): its key is every source file's
path, size, mtime, inode and ctime (a rewrite keeping size and mtime, as `cp -p`, `rsync -a` or `tar x` do, still
gets a new inode or ctime), the dataset config that parsing reads, the data root and INDEX_VERSION. A changed source
gets a new key, and the build prunes the old file; a corrupt file fails the checksum and is rebuilt.
"""

import gc
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

from evalrunner import cache
from evalrunner.datasets.item import Item
from evalrunner.datasets.itemfile import FORMAT_VERSION, Items, encode, read, write

__all__ = ["Items", "Parsed", "encode", "folder", "image_ids", "image_paths", "load", "read", "write"]
INDEX_VERSION = 2  # bump when any dataset's parsing changes: old files then no longer match any key
# dataset keys that never change the items
NOT_PARSED = ("generation", "prompt", "vqa_variant", "cider_tokenizer", "metric")
log = logging.getLogger("evalrunner")


class Parsed(Protocol):
    def sources(self) -> list[Path]: ...  # the files (and folders) parse() reads: the key

    def parse(self) -> tuple[list[Item], list[Item]]: ...  # (test items, demo pool)


def folder(value: str | None) -> Path:
    """index_dir, or by default $XDG_CACHE_HOME/evalrunner/index (~/.cache/evalrunner/index)."""
    return cache.folder(value, "index")


def image_ids(items: Sequence[Item]) -> list[int]:
    """Every item's image_id, from the index's column when there is one (RICES reads the whole pool)."""
    return items.image_ids() if isinstance(items, Items) else [it.image_id for it in items]


def image_paths(items: Sequence[Item]) -> list[str]:
    return items.image_paths() if isinstance(items, Items) else [it.image_path for it in items]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsing allocates millions of small dicts; the cyclic collector would scan them over and over (it takes
    three quarters of a full VQAv2 parse) and finds no cycles there."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse(dataset: Parsed) -> tuple[list[Item], list[Item]]:
    with _gc_paused():
        return dataset.parse()


class _Unindexable(Exception):
    def __init__(self, splits: tuple[list[Item], list[Item]]) -> None:
        self.splits = splits


def load(dataset: Parsed, cfg: DictConfig, data_root: Path,
         index_dir: Path | None) -> tuple[Sequence[Item], Sequence[Item], str]:
    """The dataset's (test items, demo pool, data digest): from its index in `index_dir`, built first if needed;
    or, with no index_dir, parsed in memory as lists. The digest is the index key: it changes whenever a source
    file or the parsing config does, so a job's fingerprint can cover the data it read."""
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    config = {k: v for k, v in resolved.items() if k not in NOT_PARSED}
    config.update(data_root=str(data_root), parser=type(dataset).__qualname__, version=[INDEX_VERSION, FORMAT_VERSION])
    try:
        sources = dataset.sources()
        digest = cache.key(sources, config)
    except OSError:
        return (*_parse(dataset), "")  # a missing file or folder: the parser names it in its own one-line error
    if index_dir is None:
        return (*_parse(dataset), digest)
    stable = hashlib.sha256(json.dumps([list(map(str, sources)), config], default=str).encode()).hexdigest()[:12]
    path = index_dir / f"{cfg.name}-{stable}-{digest}.idx"

    def build() -> None:
        splits = _parse(dataset)
        try:
            with _gc_paused():
                arrays = encode(splits)
        except OverflowError:
            raise _Unindexable(splits) from None
        write(path, arrays)
        for old in index_dir.glob(f"{cfg.name}-{stable}-*.idx"):  # earlier versions of the same sources
            if old != path:
                old.unlink(missing_ok=True)
        log.info("dataset index of %s built: %s", cfg.name, path)

    try:
        cache.ensure(path, build)
        return (*read(path), digest)
    except _Unindexable as e:
        return (*e.splits, digest)
    except (cache.CacheError, OSError) as e:
        log.warning("dataset index unusable (%s): parsing %s in memory instead", e, cfg.name)
        return (*_parse(dataset), digest)
