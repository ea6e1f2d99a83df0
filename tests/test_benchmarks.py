"""Every benchmark script runs on main, in its smoke mode (tiny sizes), so that none can rot unnoticed."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCHMARKS = sorted((Path(__file__).parents[1] / "benchmarks").glob("*.py"))


def test_there_are_benchmarks_to_run() -> None:
    assert len(BENCHMARKS) >= 2


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_the_benchmark_runs_in_smoke_mode_and_its_checks_pass(script: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(script), "--smoke"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)

    assert proc.returncode == 0, (proc.stdout[-1500:], proc.stderr[-1500:])
    assert proc.stdout.strip(), "a benchmark prints its figures"
