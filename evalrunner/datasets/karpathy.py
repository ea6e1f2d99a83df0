"""Captions in a Karpathy split file (dataset_coco.json, dataset_flickr30k.json), scored with CIDEr-D."""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evalrunner.datasets.base import Item
from evalrunner.datasets.captions import CaptionDataset
from evalrunner.datasets.entries import expect_list, items_from, load_json
from evalrunner.errors import UserError


class KarpathyCaptions(CaptionDataset):
    files = ("karpathy_file",)
    folders = ("image_dir",)
    file_name = "dataset_coco.json"  # the split file's official name, for error messages

    def image_id(self, image: dict[str, Any]) -> int:
        raise NotImplementedError

    def image_path(self, image_dir: Path, image: dict[str, Any]) -> str:
        raise NotImplementedError

    def configure(self, cfg: DictConfig) -> None:
        super().configure(cfg)
        self.test_split, self.demo_split = cfg.test_split, cfg.demo_split

    def parse(self) -> tuple[list[Item], list[Item]]:
        path, key = self.paths["karpathy_file"], "dataset.karpathy_file"
        kind = f"a Karpathy split file ({self.file_name})"
        images = expect_list(load_json(path, key), "images", path, key, kind)
        wanted = (self.test_split, self.demo_split)

        def make(img: dict[str, Any]) -> Item:
            captions = tuple(s["raw"] for s in img["sentences"])
            if not captions:  # CIDEr needs references, and a demo shows one: found now, not after generation
                raise ValueError(f"image {img.get('filename')!r} has no sentences")
            image_id = self.image_id(img)
            return Item(id=image_id, image_id=image_id, image_path=self.image_path(self.paths["image_dir"], img),
                        answer=captions[0], references=captions)

        try:
            chosen = [(i, img) for i, img in enumerate(images) if img["split"] in wanted]
        except (KeyError, TypeError) as e:
            raise UserError(f"{key}: an image entry of {path} has no split ({e}); it must be {kind}") from None
        items = items_from(chosen, make, key, path, f"{{split, filename, sentences: [{{raw}}]}} as in {kind}",
                           where="image entry", id_name="image id")
        splits = {split: [it for it, (_, img) in zip(items, chosen) if img["split"] == split] for split in wanted}
        for split in wanted:
            if not splits[split]:
                raise UserError(f"{key}: {path} has no images of split {split!r}; "
                                "check dataset.test_split / dataset.demo_split")
        return splits[self.test_split], splits[self.demo_split]
