"""Names live in YAML, code lives here: a plain dict per kind, filled by a decorator."""

import importlib
from collections.abc import Callable
from typing import Any

from evalrunner.errors import UserError

_REGISTRIES: dict[str, dict[str, Any]] = {"dataset": {}, "model": {}, "format": {}}  # format: YAML-only datasets
_PACKAGES = {"dataset": "evalrunner.datasets", "format": "evalrunner.datasets", "model": "evalrunner.models"}


def register(kind: str, name: str) -> Callable[[Any], Any]:
    def add(obj: Any) -> Any:
        _REGISTRIES[kind][name] = obj
        return obj

    return add


def lookup(kind: str, name: str) -> Any:
    """A registered class, or `package.module:Class` from the user's own code (imported, not registered)."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise UserError(f"{kind}.name={name!r} cannot be imported ({e}); check the module path") from None
    importlib.import_module(_PACKAGES[kind])  # its modules register themselves; the package itself is lazy
    known = _REGISTRIES[kind]
    if name not in known:
        key = "dataset.format" if kind == "format" else f"{kind}.name"
        raise UserError(f"{key}={name!r} is not a known {kind}; choose one of: {', '.join(sorted(known))}")
    return known[name]
