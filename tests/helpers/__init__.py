"""What the tests share: running evalrunner in a real process, composing configs, and the test-only models,
data builders and servers in this package (named `helpers.<module>:<Class>` on a command line)."""

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

import evalrunner.config  # noqa: F401  (stores the schema)

TESTS = Path(__file__).parents[1]
SAMPLE = Path(__file__).parents[2] / "evalrunner" / "sample_data"


def compose_cfg(overrides: Sequence[str] = ()) -> DictConfig:
    with initialize_config_module(config_module="evalrunner.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def cli(args: Sequence[str], cwd: Path, timeout: float = 300, launcher: Sequence[str] = (sys.executable, "-m"),
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run an evalrunner command in a real process, with tests/ importable for test-only models."""
    full_env = {**os.environ, "PYTHONPATH": str(TESTS), "HYDRA_FULL_ERROR": "0", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR")
    return subprocess.run([*launcher, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def one_line_error(proc, *needles: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0]
