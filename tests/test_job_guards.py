"""What a job refuses before any work: values out of range, a folder in use, data that changed under its results,
a GPU asked for that torch cannot use; and what it records: every user error in its log, where it ran."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import SAMPLE, TESTS, cli, compose_cfg, one_line_error

from evalrunner import jobdir
from evalrunner.config import validate
from evalrunner.errors import UserError

ARGS = ["evalrunner", "dataset=vqav2", "shots=2", "num_samples=30", "batch_size=4"]


@pytest.mark.parametrize("override", ["num_workers=-1", "model.latency_s=-1", "trial=-1", "batch_size=0",
                                      "shots=-2", "num_samples=0"])
def test_a_negative_count_is_refused_naming_its_key(override: str) -> None:
    cfg = compose_cfg([override])

    with pytest.raises(UserError) as refused:
        validate(cfg)

    assert str(refused.value).startswith(override)


def test_the_default_config_passes_validation() -> None:
    validate(compose_cfg(["dataset=vqav2", "trial=0", "num_workers=0"]))


def test_a_negative_trial_is_refused_in_one_line_before_the_job_folder_is_touched(tmp_path: Path) -> None:
    run = tmp_path / "run"

    proc = cli([*ARGS, "trial=-1", f"hydra.run.dir={run}"], tmp_path)

    one_line_error(proc, "trial=-1")
    assert not (run / "partial").exists()
    assert "trial=-1" in (run / "evalrunner.log").read_text()


def test_a_missing_data_root_is_also_written_to_the_jobs_log(tmp_path: Path) -> None:
    run = tmp_path / "run"

    proc = cli([*ARGS, f"data_root={tmp_path / 'nowhere'}", f"hydra.run.dir={run}"], tmp_path)

    one_line_error(proc, "data_root")
    assert "nowhere" in (run / "evalrunner.log").read_text()


def test_a_folder_held_by_one_run_is_refused_to_a_second_until_the_first_ends(tmp_path: Path) -> None:
    with jobdir.locked(tmp_path):
        with pytest.raises(jobdir.InUse, match=f"pid {os.getpid()}"):
            with jobdir.locked(tmp_path):
                pass

    with jobdir.locked(tmp_path):  # free again
        pass


@pytest.mark.slow
def test_a_second_run_into_a_busy_folder_is_refused_and_the_first_ends_as_if_alone(tmp_path: Path) -> None:
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert cli([*ARGS, f"hydra.run.dir={reference}"], tmp_path).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(TESTS)}


    def start(*extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", *ARGS, *extra, f"hydra.run.dir={run}"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = start("model.latency_s=2")  # 8 batches: 16 s of generation, for the others to start meanwhile
    deadline = time.monotonic() + 120
    while not (run / "partial" / "rank0.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)

    others = [start("shots=4"), start()]
    other_config, same_config = [_finished(p) for p in others]
    _, stderr = first.communicate(timeout=240)

    assert first.returncode == 0, stderr[-2000:]
    one_line_error(other_config, str(run), "in use by another run")
    one_line_error(same_config, str(run), "in use by another run")
    assert (run / "predictions.json").read_bytes() == (reference / "predictions.json").read_bytes()
    lines = (run / "partial" / "rank0.jsonl").read_text().splitlines()
    assert len(lines) == len({json.loads(line)["id"] for line in lines}) == 30


def _finished(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _correct_the_demo_answers(data: Path) -> None:
    path = data / "vqav2" / "v2_mscoco_train2014_annotations.json"
    annotations = json.loads(path.read_text())
    for a in annotations["annotations"]:
        a["multiple_choice_answer"] = "corrected"
    path.write_text(json.dumps(annotations))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(SAMPLE / "vqav2", root / "vqav2")
    shutil.copytree(SAMPLE / "coco", root / "coco")
    return root


@pytest.mark.slow
def test_a_finished_job_whose_data_changed_is_refused_instead_of_reporting_nothing_to_do(tmp_path: Path,
                                                                                       data: Path) -> None:
    run = tmp_path / "run"
    assert cli([*ARGS, f"data_root={data}", f"hydra.run.dir={run}"], tmp_path).returncode == 0
    before = (run / "result.json").read_bytes()
    _correct_the_demo_answers(data)

    proc = cli([*ARGS, f"data_root={data}", f"hydra.run.dir={run}"], tmp_path)

    one_line_error(proc, str(run), "made from other data", "move that directory away")
    assert (run / "result.json").read_bytes() == before
    assert "nothing to do" not in (run / "evalrunner.log").read_text()


@pytest.mark.slow
def test_a_half_done_job_whose_data_changed_never_mixes_old_predictions_with_new(tmp_path: Path, data: Path) -> None:
    run = tmp_path / "run"
    assert cli([*ARGS, f"data_root={data}", f"hydra.run.dir={run}"], tmp_path).returncode == 0
    partial = run / "partial" / "rank0.jsonl"
    partial.write_bytes(b"".join(partial.read_bytes().splitlines(keepends=True)[:12]))  # as if killed half-way
    (run / "result.json").unlink()
    (run / "predictions.json").unlink()
    _correct_the_demo_answers(data)

    proc = cli([*ARGS, f"data_root={data}", f"hydra.run.dir={run}"], tmp_path)

    one_line_error(proc, str(run), "partial predictions of this config made from other data")
    assert not (run / "predictions.json").exists()
    assert len(partial.read_bytes().splitlines()) == 12


def test_a_gpu_asked_for_but_unusable_is_refused_instead_of_running_on_cpu(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a usable GPU")
    run = tmp_path / "run"

    proc = cli([*ARGS, f"hydra.run.dir={run}"], tmp_path, env={"CUDA_VISIBLE_DEVICES": "0"})

    one_line_error(proc, "CUDA_VISIBLE_DEVICES=0", "torch.cuda.is_available() is False")
    assert not (run / "result.json").exists()


def test_result_json_records_where_the_job_ran(tmp_path: Path) -> None:
    run = tmp_path / "run"

    proc = cli([*ARGS, "num_samples=8", f"hydra.run.dir={run}"], tmp_path,
               env={"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})

    assert proc.returncode == 0, proc.stderr[-2000:]
    environment = json.loads((run / "result.json").read_text())["environment"]
    assert environment["device"] == "cpu"
    assert environment["world_size"] == 1
    assert environment["cpu_threads"] == 1
    assert environment["torch"] == torch.__version__
    assert environment["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"dtype", "pycocoevalcap", "evalrunner", "host"} <= environment.keys()
    assert "transformers" not in environment  # model=nearest never loads it
