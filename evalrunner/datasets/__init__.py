"""The datasets: each built-in one registers its class by name; a YAML-only one names its `format` instead."""

import importlib
import os
import pkgutil
from pathlib import Path

from omegaconf import DictConfig

from evalrunner.datasets.base import Dataset, Item
from evalrunner.errors import UserError
from evalrunner.registry import lookup

# Every module of this package is imported, so a new dataset's @register runs without a list to edit here.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["SAMPLE_ROOT", "Dataset", "Item", "build", "data_root", "dataset_class", "task_of"]
SAMPLE_ROOT = Path(__file__).parents[1] / "sample_data"


def data_root(cfg: DictConfig) -> Path:
    """The folder a job's dataset paths are relative to: `data_root`, or the bundled sample data."""
    if cfg.data_root is None:
        return SAMPLE_ROOT
    root = Path(os.path.expanduser(cfg.data_root))
    if not root.is_dir():
        raise UserError(f"data_root: directory not found: {root}; "
                        "point data_root at the folder holding coco/ and vqav2/")
    return root


def dataset_class(cfg: DictConfig) -> type[Dataset]:
    """The class that reads a dataset config: its `format`'s (a YAML-only dataset), else its registered `name`'s."""
    if cfg.get("format") is not None:
        return lookup("format", str(cfg.format))  # type: ignore[no-any-return]
    return lookup("dataset", str(cfg.name))  # type: ignore[no-any-return]


def build(cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> Dataset:
    return dataset_class(cfg)(cfg, data_root, index_dir)


def task_of(cfg: DictConfig) -> str:
    """A dataset config's task kind, without reading its data: the class's, or a YAML-only dataset's `task`."""
    cls = dataset_class(cfg)
    return str(cfg.task) if cfg.get("format") is not None else cls.task
