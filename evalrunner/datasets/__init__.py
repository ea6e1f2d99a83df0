from evalrunner.datasets import coco, flickr30k, hatefulmemes, imagenet, okvqa, textvqa, vizwiz, vqav2  # noqa: F401
from evalrunner.datasets.base import Dataset, Item

__all__ = ["Dataset", "Item"]
