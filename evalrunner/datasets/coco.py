"""COCO captions in the Karpathy split (dataset_coco.json), scored with CIDEr-D."""

from pathlib import Path
from typing import Any

from evalrunner.datasets.karpathy import KarpathyCaptions
from evalrunner.registry import register


@register("dataset", "coco")
class CocoCaptions(KarpathyCaptions):
    file_name = "dataset_coco.json"

    def image_id(self, image: dict[str, Any]) -> int:
        return int(image["cocoid"])

    def image_path(self, image_dir: Path, image: dict[str, Any]) -> str:
        return str(image_dir / image["filepath"] / image["filename"])
