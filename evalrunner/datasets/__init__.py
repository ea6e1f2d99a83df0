from evalrunner.datasets import coco, vqav2  # noqa: F401  (fills the registry)
from evalrunner.datasets.base import Dataset, Item

__all__ = ["Dataset", "Item"]
