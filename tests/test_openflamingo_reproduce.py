"""scripts/reproduce_openflamingo.sh on the tiny random OpenFlamingo: its sweep runs and its collector writes every
cell (no GPU here: the real checkpoints are run on a cluster)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TESTS

pytest.importorskip("open_flamingo.src.flamingo", reason="model=openflamingo: bash scripts/install_openflamingo.sh")
from helpers import tiny_openflamingo  # noqa: E402

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).parents[1] / "scripts" / "reproduce_openflamingo.sh"


def test_the_reproduction_sweep_runs_coco_and_vqav2_at_each_shot_count_on_the_tiny_model(tmp_path: Path) -> None:
    parts = tiny_openflamingo.build_openflamingo(tmp_path / "model")
    env = {**os.environ, "PYTHONPATH": str(TESTS), "PYTHON": sys.executable, "LAUNCHER": "none",
           "OF_CHECKPOINT": parts["checkpoint"], "OF_LM": parts["lm_path"], "OF_VISION": parts["vision_encoder"],
           "OF_VISION_PRETRAINED": parts["vision_pretrained"], "OF_CROSS_ATTN_EVERY": "1", "OF_PRECISION": "fp32",
           "OF_REMOTE_CODE": "false", "SHOTS": "0,1", "TRIALS": "0", "SWEEP_DIR": str(tmp_path / "sweep")}

    proc = subprocess.run(["bash", str(SCRIPT), "num_samples=2", "batch_size=2"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)

    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "sweep" / "results.json").read_text())
    assert sorted(results) == ["coco", "vqav2"]
    assert [row["shots"] for row in results["coco"]] == [0, 1]


def test_an_unknown_release_is_a_one_line_error() -> None:
    proc = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, "OF_MODEL": "9X"}, capture_output=True, text=True)

    assert proc.returncode == 2
    assert proc.stderr.strip() == "reproduce_openflamingo: OF_MODEL=9X: choose 3B or 4B"
