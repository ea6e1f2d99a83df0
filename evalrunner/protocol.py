"""What a protocol (conf/protocol/) changes beyond the dataset settings it picks: OpenFlamingo's zero-shot demos.

OpenFlamingo evaluates "0 shots" with two demos whose images are left out of the prompt (Flamingo's convention,
`compute_effective_num_shots`). Here such a demo is an Item with image_path "", which every model shows as text.
"""

import dataclasses
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from evalrunner.datasets.base import Item

Sampler = Callable[[Item], list[Item]]


def text_demos(cfg: DictConfig) -> int:
    """How many text-only demos a job shows: only at shots=0, and only where the protocol asks for them."""
    if cfg.shots != 0:
        return 0
    return int(OmegaConf.select(cfg, "protocol.zero_shot_text_demos", default=0) or 0)


def demo_count(cfg: DictConfig) -> int:
    """The number of demos to draw per item."""
    return cfg.shots or text_demos(cfg)


class TextOnly:
    """The sampler's demos with their images left out (a class, not a closure, so DataLoader workers can pickle it)."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler

    def __call__(self, item: Item) -> list[Item]:
        return [dataclasses.replace(d, image_path="") for d in self.sampler(item)]


def name(cfg: DictConfig) -> str:
    return str(OmegaConf.select(cfg, "protocol.name", default="official"))
