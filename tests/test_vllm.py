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


def test_tensor_parallelism_under_several_evalrunner_ranks_is_refused_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = compose_cfg([*JOB, "model=vllm", "model.path=ckpt", "model.tensor_parallel_size=2"])

    with pytest.raises(UserError, match="tensor_parallel_size>1 with several evalrunner ranks"):
        engine_args(cfg.model, torch.device("cpu"), max_images=3)


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
