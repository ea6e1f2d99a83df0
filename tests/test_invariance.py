"""Real HF models predict the same bytes on 1, 2 or 3 ranks, and after a resume: batches do not depend on ranks."""

import json
import sys
from pathlib import Path

import pytest
from helpers import cli

pytestmark = pytest.mark.slow
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone")
# 13 items in batches of 3: the last batch is short, and no world size divides the batches evenly
ARGS = ["model=hf", "dataset=vqav2", "shots=2", "num_samples=13", "batch_size=3", "dataset.generation.num_beams=3"]
ENV = {"HF_HUB_OFFLINE": "1"}


def _torchrun(n: int, args: list[str], out: Path, env: dict[str, str] | None = None):
    return cli([f"--nproc_per_node={n}", "-m", "evalrunner", *args, f"hydra.run.dir={out}"], out.parent,
               launcher=TORCHRUN, env={**ENV, **(env or {})}, timeout=400)


@pytest.mark.parametrize("checkpoint", ["llava", "idefics3"])
def test_hf_predictions_are_byte_identical_on_one_two_and_three_ranks(
    checkpoint: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path = request.getfixturevalue(checkpoint)
    predictions = {}

    for n in (1, 2, 3):
        proc = _torchrun(n, [*ARGS, f"model.path={path}"], tmp_path / f"n{n}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        predictions[n] = (tmp_path / f"n{n}" / "predictions.json").read_bytes()

    assert len(json.loads(predictions[1])) == 13
    assert predictions[1] == predictions[2] == predictions[3]


def test_a_killed_two_rank_hf_job_resumes_to_the_bytes_of_an_uninterrupted_run(
    llava: Path, tmp_path: Path
) -> None:
    args = [*ARGS, f"model.path={llava}", "model.name=helpers.dying_hf:DyingHF"]
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert _torchrun(2, args, reference).returncode == 0
    killed = _torchrun(2, args, run, env={"EVALRUNNER_TEST_DIE_AFTER": "1"})  # rank 1 dies in its second batch
    assert killed.returncode != 0 and not (run / "result.json").exists()
    done = sum(p.read_text().count("\n") for p in (run / "partial").glob("rank*.jsonl"))
    assert 3 <= done < 13

    resumed = _torchrun(2, args, run)

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed {done} predictions" in (run / "evalrunner.log").read_text()
    assert (run / "predictions.json").read_bytes() == (reference / "predictions.json").read_bytes()
