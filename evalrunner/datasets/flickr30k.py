"""Flickr30k captions in the Karpathy split (dataset_flickr30k.json), scored with CIDEr-D."""

from pathlib import Path
from typing import Any

from evalrunner.datasets.karpathy import KarpathyCaptions
from evalrunner.registry import register


@register("dataset", "flickr30k")
class Flickr30k(KarpathyCaptions):
    file_name = "dataset_flickr30k.json"

    def image_id(self, image: dict[str, Any]) -> int:
        # The file has no id field; Flickr's own photo id is the file name's number ("1000092795.jpg").
        stem = Path(image["filename"]).stem
        if not stem.isdigit():
            raise ValueError(f"a numeric file name (got {image['filename']!r})")
        return int(stem)

    def image_path(self, image_dir: Path, image: dict[str, Any]) -> str:
        return str(image_dir / image["filename"])
