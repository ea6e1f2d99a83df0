"""The wheel as a user gets it: built without a warning, installed in a fresh venv outside the checkout, it runs the
quickstart sweep, the report and the collector, and `evalrunner --version` names the pyproject version."""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _fresh_venv(path: Path) -> Path:
    """A venv that sees this environment's packages (torch, hydra, ...) as plain path entries, so the .pth files
    in them, such as the checkout's editable-install finder, never run: evalrunner can only come from the wheel."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)], cwd=path.parent)
    python = path / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=path).strip()
    shared = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site) / "shared_packages.pth").write_text("".join(p + "\n" for p in shared))
    return python


@pytest.mark.slow
def test_the_wheel_installed_in_a_fresh_venv_runs_the_quickstart_the_report_and_the_collector(tmp_path: Path) -> None:
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w",
                  str(tmp_path / "dist"), str(ROOT)], cwd=tmp_path)
    [wheel] = (tmp_path / "dist").glob("evalrunner-*.whl")
    python = _fresh_venv(tmp_path / "venv")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(wheel)], cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"

    where = _run([str(python), "-c", "import evalrunner, hydra_plugins.evalrunner_launcher.launcher as l; "
                  "print(evalrunner.__file__); print(l.__file__)"], cwd=work, env=env)
    version = _run([str(python.parent / "evalrunner"), "--version"], cwd=work, env=env)
    sweep = _run([str(python.parent / "evalrunner"), "-m", "dataset=coco,vqav2", "shots=0,4,32",
                  "hydra.sweep.dir=quickstart"], cwd=work, env=env)
    report = _run([str(python), "-m", "evalrunner.report", "quickstart"], cwd=work, env=env)
    collected = _run([str(python), "-m", "evalrunner.collect", "quickstart"], cwd=work, env=env)

    assert not re.search(r"Warning|absent from the `packages`", build), build
    assert all(line.startswith(str(tmp_path / "venv")) for line in where.split())
    assert version.strip() == f"evalrunner {VERSION}"
    assert "all jobs ->" in sweep and (work / "quickstart" / "results.json").is_file()
    assert (work / "quickstart" / "report.json").is_file() and "report:" in report
    assert "coco" in collected and "vqav2" in collected
    names = zipfile.ZipFile(wheel).namelist()
    assert f"evalrunner-{VERSION}.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"evalrunner-{VERSION}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata
