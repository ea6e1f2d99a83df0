"""The dataset index's file: a split's items as flat arrays, and the lazy sequence that reads one Item at a time.

Per split: `id` and `image_id` (int64, or uint64 for TextVQA's 64-bit image ids), the string ids (int32) of
`image_path`, `question` and `answer`, and the references as a ragged list (`ref_starts` into `refs`). Every string is
stored once in one table (`str.starts` offsets into the utf-8 `str.blob`). The payload is a magic, a JSON header
naming each array's dtype, length and offset, then the arrays, 64-byte aligned; evalrunner.cache adds the footer.
"""

import json
import mmap
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from evalrunner import cache
from evalrunner.datasets.item import Item

FORMAT_VERSION = 1  # bump when the layout changes
_MAGIC = struct.Struct("<8sQ")  # magic, header length
_TAG = b"EVRINDX1"
_ALIGN = 64
SPLITS = ("test", "demo")


class Strings:
    def __init__(self, starts: np.ndarray, blob: np.ndarray) -> None:
        self.starts, self.blob = starts, blob

    def __getitem__(self, k: int) -> str:
        return self.blob[self.starts[k] : self.starts[k + 1]].tobytes().decode("utf-8", "surrogatepass")


class Items(Sequence[Item]):
    """One split of the index: an Item is built when it is read, never before."""

    def __init__(self, arrays: Mapping[str, np.ndarray], split: str, strings: Strings, path: Path) -> None:
        self._a = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(split + ".")}
        self._s, self._where = strings, (path, split)

    def __reduce__(self) -> tuple[Any, tuple[Path, str]]:
        return _reopen, self._where  # a DataLoader worker started by spawn maps the file, rather than copy it

    def __len__(self) -> int:
        return len(self._a["id"])

    @overload
    def __getitem__(self, i: int) -> Item: ...

    @overload
    def __getitem__(self, i: slice) -> list[Item]: ...

    def __getitem__(self, i: int | slice) -> Item | list[Item]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        a, s = self._a, self._s
        refs = a["refs"][a["ref_starts"][i] : a["ref_starts"][i + 1]].tolist()
        return Item(id=int(a["id"][i]), image_id=int(a["image_id"][i]), image_path=s[a["image_path"][i]],
                    question=s[a["question"][i]], answer=s[a["answer"][i]], references=tuple(s[k] for k in refs))

    def image_ids(self) -> list[int]:
        return self._a["image_id"].tolist()  # type: ignore[no-any-return]

    def image_paths(self) -> list[str]:
        table: dict[int, str] = {}
        return [table[k] if k in table else table.setdefault(k, self._s[k]) for k in self._a["image_path"].tolist()]


def _ints(values: list[int]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:  # TextVQA's 64-bit hex image ids; a column that fits neither raises OverflowError
        return np.array(values, dtype=np.uint64)


def encode(splits: tuple[Sequence[Item], Sequence[Item]]) -> dict[str, np.ndarray]:
    """The arrays of the index: per split id, image_id, the string ids of its text fields and ragged references."""
    columns: dict[str, list[str]] = {}
    arrays: dict[str, np.ndarray] = {}
    for split, items in zip(SPLITS, splits):
        arrays[f"{split}.id"] = _ints([it.id for it in items])
        arrays[f"{split}.image_id"] = _ints([it.image_id for it in items])
        columns[f"{split}.image_path"] = [it.image_path for it in items]
        columns[f"{split}.question"] = [it.question for it in items]
        columns[f"{split}.answer"] = [it.answer for it in items]
        columns[f"{split}.refs"] = [r for it in items for r in it.references]
        counts = np.fromiter((len(it.references) for it in items), np.int64, len(items))
        arrays[f"{split}.ref_starts"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # Deduplicated in C (dict.fromkeys, map): answers, paths and questions repeat a lot, and a loop per string is slow.
    table: dict[str, int] = dict.fromkeys((s for column in columns.values() for s in column), 0)
    for k, s in enumerate(table):
        table[s] = k
    id_type = np.int32 if len(table) < 2**31 else np.int64
    for name, column in columns.items():
        arrays[name] = np.fromiter(map(table.__getitem__, column), id_type, len(column))
    encoded = [s.encode("utf-8", "surrogatepass") for s in table]
    lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
    arrays["str.starts"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    arrays["str.blob"] = np.frombuffer(b"".join(encoded), np.uint8)
    return arrays


def write(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    layout, offset = {}, 0
    for name, arr in arrays.items():
        layout[name] = [arr.dtype.str, len(arr), offset]
        offset += -(-arr.nbytes // _ALIGN) * _ALIGN
    head = json.dumps({"version": FORMAT_VERSION, "arrays": layout}).encode()
    start = -(-(_MAGIC.size + len(head)) // _ALIGN) * _ALIGN  # arrays start aligned, at `start` + their offset

    def fill(f: Any) -> None:
        f.write(_MAGIC.pack(_TAG, len(head)) + head.ljust(start - _MAGIC.size))
        for arr in arrays.values():
            f.write(memoryview(np.ascontiguousarray(arr)).cast("B"))  # type: ignore[arg-type]
            f.write(bytes(-arr.nbytes % _ALIGN))

    cache.write(path, fill)


def read(path: Path) -> tuple[Items, Items]:
    with open(path, "rb") as f:
        buf = np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)
    tag, size = _MAGIC.unpack(buf[: _MAGIC.size].tobytes())
    head = json.loads(buf[_MAGIC.size : _MAGIC.size + size].tobytes())
    if tag != _TAG or head["version"] != FORMAT_VERSION:
        raise ValueError(f"{path} is not a dataset index of version {FORMAT_VERSION}")
    start = -(-(_MAGIC.size + size) // _ALIGN) * _ALIGN
    arrays = {}
    for name, (dtype, n, offset) in head["arrays"].items():
        dt = np.dtype(dtype)
        arrays[name] = buf[start + offset : start + offset + n * dt.itemsize].view(dt)
    strings = Strings(arrays["str.starts"], arrays["str.blob"])
    return Items(arrays, "test", strings, path), Items(arrays, "demo", strings, path)


def _reopen(path: Path, split: str) -> Items:
    return read(path)[SPLITS.index(split)]
