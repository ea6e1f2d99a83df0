"""The backend contract: a backend of one file and one YAML runs a job, and every backend module imports without
its engine installed."""

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import compose_cfg

from evalrunner.job import run
from evalrunner.models import Backend
from evalrunner.prompts import FLAMINGO, PromptBuilder, PromptStyle, Template
from evalrunner.requests import Request


class CountImages(Backend):
    """Answers every question with the number of images its prompt shows (the README's example)."""

    batch_invariant = True  # an item's answer never depends on the rest of its batch
    prompt_style = PromptStyle(FLAMINGO, image_token="<image>")

    def __init__(self, cfg: Any, device: Any, max_images: int) -> None:
        self.max_images = max_images

    def prepare(self, requests: Sequence[Request]) -> list[Request]:  # runs in DataLoader workers
        return list(requests)

    def generate(self, batch: list[Request]) -> list[str]:
        return [str(len(r.prompt.images)) for r in batch]


def test_a_backend_of_one_class_runs_a_job_from_requests_alone(tmp_path: Path) -> None:
    cfg = compose_cfg(["dataset=vqav2", "shots=2", "num_samples=6", "model.name=test_backends:CountImages"])

    run(cfg, tmp_path)

    predictions = json.loads((tmp_path / "predictions.json").read_text())
    result = json.loads((tmp_path / "result.json").read_text())
    assert [p["answer"] for p in predictions] == ["3"] * 6  # two demos and the query
    assert result["prompt_hash"] == PromptBuilder("vqa", Template.from_cfg(cfg.dataset.prompt),
                                                  CountImages.prompt_style).hash


@pytest.mark.slow  # a fresh interpreter importing torch
def test_every_backend_module_imports_without_any_engine_installed() -> None:
    code = """
import importlib.abc, pkgutil, sys
ENGINES = {"transformers", "vllm", "openai", "open_flamingo", "open_clip"}
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ENGINES:
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, Absent())
import evalrunner.models
print(sorted(m.name for m in pkgutil.iter_modules(evalrunner.models.__path__)))
"""

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "'hf'" in proc.stdout and "'nearest'" in proc.stdout
