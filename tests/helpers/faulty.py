"""A test-only model that breaks on purpose: the nearest-demo baseline, except on one rank."""

import os
import time
from typing import Any

import torch
from omegaconf import DictConfig

from evalrunner.errors import UserError
from evalrunner.models.nearest import NearestDemo


class FaultyModel(NearestDemo):
    def __init__(self, cfg: DictConfig, device: torch.device, max_images: int) -> None:
        super().__init__(cfg, device, max_images)
        self.fail_rank, self.mode = cfg.fail_rank, cfg.mode

    def generate(self, batch: Any) -> list[str]:
        if self.mode == "refuse":  # every rank alike, as a bad setting would
            raise UserError("model.mode=refuse: refused on every rank; pick another mode")
        if int(os.environ.get("RANK", "0")) == self.fail_rank:
            if self.mode == "die":
                os._exit(3)
            if self.mode == "hang":
                time.sleep(3600)
            raise ValueError("injected failure")
        return super().generate(batch)
