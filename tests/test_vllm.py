"""model=vllm: vLLM's offline engine on the tiny LLaVA (tests/helpers/tiny_vllm.py), against model=hf on the same
weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import TESTS, cli, compose_cfg
from helpers.vllm_server import ENGINE_OVERRIDES, VLLM_ENV, need_vllm
from omegaconf import OmegaConf

from evalrunner.errors import UserError
from evalrunner.job import run
from evalrunner.models.vllm import VLLMModel, engine_args

JOB = ["dataset=vqav2", "shots=2", "num_samples=4", "batch_size=4"]


def answers(job_dir: Path) -> list[str]:
    return [p["answer"] for p in json.loads((job_dir / "predictions.json").read_text())]


def sweep_dir(root: Path, beams: int) -> Path:
    # rglob: a job's folder name holds model.path, whose slashes nest it
    (found,) = [p.parent for p in root.rglob("result.json") if f"num_beams={beams}," in str(p.relative_to(root))]
    return found


@pytest.mark.slow
def test_greedy_and_beam_predictions_equal_model_hfs_on_the_same_checkpoint(vllm_llava: Path, tmp_path: Path) -> None:
    need_vllm()
    # One process, one engine for both jobs (model reuse); a process of its own, as vLLM pins its compute threads.
    done = cli(["evalrunner", "-m", *JOB, "model=vllm", f"model.path={vllm_llava}", *ENGINE_OVERRIDES,
                "dataset.generation.num_beams=1,2", f"hydra.sweep.dir={tmp_path / 'vllm'}"], cwd=tmp_path,
               timeout=900, env=VLLM_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    for beams in (1, 2):
        run(compose_cfg([*JOB, "model=hf", f"model.path={vllm_llava}", f"dataset.generation.num_beams={beams}"]),
            tmp_path / f"hf{beams}")

    assert answers(sweep_dir(tmp_path / "vllm", 1)) == answers(tmp_path / "hf1")
    # Equal on this checkpoint; vLLM's beam search may end a beam at EOS where transformers' goes on (README).
    assert answers(sweep_dir(tmp_path / "vllm", 2)) == answers(tmp_path / "hf2")
    result = json.loads((sweep_dir(tmp_path / "vllm", 2) / "result.json").read_text())
    assert result["engine"]["name"] == "vllm" and result["engine"]["version"].startswith("vllm")
    assert result["engine"]["args"]["limit_mm_per_prompt"] == {"image": 3}
    assert result["config"]["model"]["engine_version"] == result["engine"]["version"]


def test_the_installed_vllm_version_is_part_of_the_config_and_so_of_the_fingerprint() -> None:
    cfg = compose_cfg([*JOB, "model=vllm", "model.path=x"])

    resolved = OmegaConf.to_container(cfg, resolve=True)

    assert resolved["model"]["engine_version"].startswith("vllm")  # type: ignore[index]


def test_engine_args_override_the_named_keys_and_size_the_image_limit_from_the_job() -> None:
    cfg = compose_cfg([*JOB, "model=vllm", "model.path=ckpt",
                       "model.engine_args={max_model_len:64,enforce_eager:true}"])

    args = engine_args(cfg.model, torch.device("cpu"), max_images=3)

    assert args["max_model_len"] == 64 and args["enforce_eager"] is True
    assert args["limit_mm_per_prompt"] == {"image": 3} and args["dtype"] == "float32"


def test_tensor_parallelism_under_several_ranks_joins_them_as_external_launcher_engines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = compose_cfg([*JOB, "model=vllm", "model.path=ckpt", "model.tensor_parallel_size=2"])

    monkeypatch.setenv("WORLD_SIZE", "4")
    args = engine_args(cfg.model, torch.device("cpu"), max_images=3)
    assert args["distributed_executor_backend"] == "external_launcher" and args["data_parallel_size"] == 2

    monkeypatch.setenv("WORLD_SIZE", "2")
    args = engine_args(cfg.model, torch.device("cpu"), max_images=3)
    assert args["distributed_executor_backend"] == "external_launcher" and "data_parallel_size" not in args

    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(UserError, match="tensor_parallel_size=2 does not divide the job's 3 ranks"):
        engine_args(cfg.model, torch.device("cpu"), max_images=3)


@pytest.mark.slow
def test_tensor_parallel_engines_under_torchrun_give_model_hfs_predictions(vllm_llava: Path, tmp_path: Path) -> None:
    need_vllm()
    # A segment a crashed run of ranks 0-1 left: the CPU all-reduce of the next engine of those ranks would not start.
    stale = Path("/dev/shm/-tp:0-[0-1]-cpushm_0")
    stale.write_bytes(b"left by a crashed run")
    # 4 ranks: 2 engines of 2 tensor-parallel workers. 3 batches, so the second engine runs one batch more and
    # discards it (vLLM steps the engines in lockstep); 2 jobs, so an engine is shut down and another one started.
    job = ["dataset=vqav2", "num_samples=6", "batch_size=2", "dataset.generation.num_beams=1"]
    done = cli(["--nproc_per_node=4", "-m", "evalrunner", "-m", *job, "shots=1,2", "model=vllm",
                f"model.path={vllm_llava}", "model.tensor_parallel_size=2", *ENGINE_OVERRIDES,
                f"hydra.sweep.dir={tmp_path / 'tp'}"], cwd=tmp_path, timeout=900, env=VLLM_ENV,
               launcher=(sys.executable, "-m", "torch.distributed.run", "--standalone"))

    assert done.returncode == 0, done.stderr[-3000:]
    assert not stale.exists()
    jobs = {json.loads(p.read_text())["shots"]: p.parent for p in (tmp_path / "tp").rglob("result.json")}
    assert sorted(jobs) == [1, 2]
    for shots, job_dir in jobs.items():
        run(compose_cfg([*job, f"shots={shots}", "model=hf", f"model.path={vllm_llava}"]), tmp_path / f"hf{shots}")
        assert answers(job_dir) == answers(tmp_path / f"hf{shots}")
        result = json.loads((job_dir / "result.json").read_text())
        assert result["world_size"] == 4 and result["engine"]["args"]["data_parallel_size"] == 2
        # each engine's first rank records its batches; the discarded one is nowhere
        lines = {r: len((job_dir / "partial" / f"rank{r}.jsonl").read_text().splitlines()) for r in range(4)}
        assert lines == {0: 4, 1: 0, 2: 2, 3: 0}


@pytest.mark.slow
def test_ranked_candidates_log_likelihoods_equal_model_hfs_within_1e_4(vllm_llava: Path, tmp_path: Path) -> None:
    need_vllm()

    done = subprocess.run([sys.executable, str(TESTS / "helpers" / "rank_equality.py"), str(vllm_llava), "imagenet",
                           *ENGINE_OVERRIDES], capture_output=True, text=True, timeout=900, cwd=tmp_path,
                          env={**os.environ, **VLLM_ENV, "PYTHONPATH": str(TESTS)})

    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["shape"] == [3, 9] and found["max_abs_diff"] < 1e-4


def test_without_vllm_building_the_model_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    cfg = compose_cfg([*JOB, "model=vllm", "model.path=ckpt"])

    with pytest.raises(UserError, match="install_vllm_cpu.sh"):
        VLLMModel(cfg.model, torch.device("cpu"), 3)
