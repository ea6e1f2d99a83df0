"""The one policy for reading a dataset's files and their entries: every loader answers bad input alike.

A missing file, malformed JSON, a line that is not UTF-8, an entry that lacks a field or has one of the wrong type,
and a duplicated id are each one UserError naming the config key, the file and (where there is one) the line or
entry, with what to do. No loader catches errors of its own.
"""

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from evalrunner.datasets.item import Item
from evalrunner.errors import UserError

E = TypeVar("E")
# What a malformed entry raises when read as a dict: a missing field, a wrong type, a value that does not parse
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def need_file(path: Path, key: str, what: str) -> None:
    if not path.is_file():
        raise UserError(f"{key}: file not found: {path}; set data_root or {key} to {what}")


def load_json(path: Path, key: str, what: str = "the file in the official layout") -> Any:
    need_file(path, key, what)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{key}: malformed JSON in {path} ({e}); re-download or fix the file") from None


def expect_list(doc: Any, field: str, path: Path, key: str, kind: str) -> list[Any]:
    """The list under `field`, or an error saying the file is not the kind of file `key` wants."""
    if not isinstance(doc, dict) or not isinstance(doc.get(field), list):
        raise UserError(f"{key}: {path} is not {kind} (no '{field}' list); point {key} at the right file")
    return doc[field]


def lines(path: Path, key: str, what: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line; bytes that are not UTF-8 name their line."""
    need_file(path, key, what)
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"{key}: line {number} of {path} is not UTF-8 ({e.reason} at byte {e.start}); "
                                "re-save the file as UTF-8") from None
            if text.strip():
                yield number, text


def jsonl(path: Path, key: str, what: str) -> Iterator[tuple[int, Any]]:
    """(line number, record) of each line of a JSON-lines file."""
    for number, text in lines(path, key, what):
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{key}: line {number} of {path} is not JSON ({e}); re-download or fix it") from None


def _reason(e: BaseException) -> str:
    return f"lacks {e}" if isinstance(e, KeyError) else f"is malformed ({type(e).__name__}: {e})"


def items_from(entries: Iterable[tuple[int, E]], make: Callable[[E], Item], key: str, path: Path, shape: str,
               where: str = "entry", id_name: str = "id") -> list[Item]:
    """An Item per (number, entry) by `make`; an entry it cannot read is one error naming the file and entry, and a
    duplicated id is refused (`check_unique`). `shape` says what an entry must be, `where` what a number counts."""
    items = []
    for number, entry in entries:
        try:
            items.append(make(entry))
        except MALFORMED as e:
            raise UserError(f"{key}: {where} {number} of {path} {_reason(e)}; "
                            f"entries must be {shape}") from None
    check_unique(items, key, path, id_name)
    return items


def integer(value: Any) -> int:
    """An id: an int, or a string of digits; anything else (a float, a bool, "abc") raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().lstrip("-").isdigit():
        raise ValueError(f"an integer id (got {value!r})")
    return int(value)


def check_unique(items: Sequence[Item], key: str, path: Path, what: str = "id") -> None:
    """Two items with one id would be merged silently downstream (the survivor depending on the rank count)."""
    seen: set[int] = set()
    for it in items:
        if it.id in seen:
            raise UserError(f"{key}: {path} has the {what} {it.id} twice; remove the duplicate entry")
        seen.add(it.id)
