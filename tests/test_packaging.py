"""The console script and `python -m` are one Hydra app, and an installed wheel carries its configs and sample."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_the_console_script_runs_the_same_app(tmp_path: Path) -> None:
    proc = subprocess.run(["evalrunner", "dataset=vqav2", "num_samples=5", f"hydra.run.dir={tmp_path}"],
                          capture_output=True, text=True, timeout=120)

    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "result.json").read_text())["num_samples"] == 5


@pytest.mark.slow
def test_a_built_wheel_finds_its_configs_and_sample_data_outside_the_checkout(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, timeout=300)
    [wheel] = (tmp_path / "dist").glob("evalrunner-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "evalrunner/conf/config.yaml" in names and "evalrunner/conf/hydra/launcher/slurm.yaml" in names
    assert "evalrunner/sample_data/vqav2/v2_mscoco_val2014_annotations.json" in names
    assert "hydra_plugins/evalrunner_launcher/launcher.py" in names
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")

    proc = subprocess.run(
        [sys.executable, "-c", "import evalrunner, sys; print(evalrunner.__file__); from evalrunner.__main__ import "
         "main; sys.argv[1:] = sys.argv[2:]; main()", "-", "dataset=coco", "num_samples=5",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True,
        timeout=120)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(tmp_path / "site"))
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["sample_data"] is True and result["num_samples"] == 5


def test_evalrunner_version_prints_the_version_in_pyproject_and_the_changelog() -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

    proc = subprocess.run(["evalrunner", "--version"], capture_output=True, text=True, timeout=120)

    assert proc.returncode == 0 and proc.stdout == f"evalrunner {version}\n"
    assert f"## [{version}]" in (ROOT / "CHANGELOG.md").read_text()
