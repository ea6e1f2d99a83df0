"""The backends: every module of this package is imported here, so that its `@register("model", ...)` fills the
registry; a new backend is one module (importing its engine inside the class, not at the top) and one YAML file."""

import importlib
import pkgutil

from evalrunner.models import reuse
from evalrunner.models.base import Backend, build_model

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Backend", "build_model", "reuse"]
