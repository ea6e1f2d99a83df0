"""evalrunner: few-shot evaluation of vision-language models, from a laptop to a SLURM cluster.

The names below are imported on first use, so `import evalrunner` (and the collector and the report, which need
no model) start without torch, Hydra's job runtime or any model.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalrunner.job import run
    from evalrunner.metrics import cider, vqa_accuracy

__all__ = ["cider", "run", "vqa_accuracy"]
_HOME = {"run": "evalrunner.job", "cider": "evalrunner.metrics", "vqa_accuracy": "evalrunner.metrics"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'evalrunner' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
