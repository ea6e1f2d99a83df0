"""model=openai: against vLLM's real OpenAI server on the tiny LLaVA, and a loopback stub for the fault cases."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import SAMPLE, TESTS, cli, compose_cfg
from helpers.openai_stub import Reply, serve
from helpers.vllm_server import SERVED_NAME

from evalrunner.datasets import index
from evalrunner.errors import UserError
from evalrunner.job import run
from evalrunner.models.openai import OpenAIModel
from evalrunner.registry import lookup
from evalrunner.requests import GenerateRequest, Prompt, Text, Turn
from evalrunner.tasks import predictor

pytest.importorskip("openai", reason="model=openai needs the openai extra: pip install -e '.[openai]'")
JOB = ["dataset=vqav2", "shots=2", "num_samples=4", "batch_size=2", "dataset.generation.num_beams=1"]


def openai_args(base_url: str, *extra: str) -> list[str]:
    return [*JOB, "model=openai", f"model.base_url={base_url}", "model.model=stub", "model.max_retries=2",
            "model.timeout_s=2", *extra]


def errors(stderr: str) -> list[str]:
    """The error lines, without the progress bar's."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def predictions(job_dir: Path) -> dict[int, str]:
    return {p["question_id"]: p["answer"] for p in json.loads((job_dir / "predictions.json").read_text())}


@pytest.mark.slow
def test_greedy_predictions_through_vllms_server_equal_model_hf(vllm_server: str, vllm_llava: Path,
                                                                tmp_path: Path) -> None:
    run(compose_cfg([*JOB, "model=hf", f"model.path={vllm_llava}"]), tmp_path / "hf")

    run(compose_cfg([*JOB, "model=openai", f"model.base_url={vllm_server}", f"model.model={SERVED_NAME}"]),
        tmp_path / "openai")

    assert predictions(tmp_path / "openai") == predictions(tmp_path / "hf")
    engine = json.loads((tmp_path / "openai" / "result.json").read_text())["engine"]
    assert engine["served_model"] == [SERVED_NAME] and engine["usage"]["requests"] == 4
    assert engine["usage"]["prompt_tokens"] > 4 * 2 * 4  # every prompt holds at least its three images' tokens


def test_a_429_is_retried_after_the_seconds_its_retry_after_header_asks(tmp_path: Path) -> None:
    script = [Reply(429, {"retry-after": "1"}, "slow down")]
    with serve(script) as (url, stub):
        run(compose_cfg(openai_args(url, "model.concurrency=1")), tmp_path)

    assert len(stub.seen) == 5  # four items, one of them sent twice
    assert stub.seen[1].at - stub.seen[0].at >= 1.0
    assert set(predictions(tmp_path).values()) == {"yes"}


@pytest.mark.slow
def test_a_400_is_a_one_line_error_naming_the_status_and_the_servers_message(tmp_path: Path) -> None:
    with serve([Reply(400, {}, "image too large\nsecond line")] * 8) as (url, stub):
        done = cli(["evalrunner", *openai_args(url), f"hydra.run.dir={tmp_path}"], cwd=tmp_path)

    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert errors(done.stderr) == [f"error: model=openai: {url} answered 400: image too large"]
    assert len(stub.seen) <= 2  # never retried: the two in flight at once, and nothing after


@pytest.mark.slow
def test_a_dead_port_is_a_one_line_error_naming_base_url_within_timeout_times_retries(tmp_path: Path) -> None:
    with serve([]) as (url, _):
        pass  # stopped: nothing listens on its port any more

    done = cli(["evalrunner", *openai_args(url), f"hydra.run.dir={tmp_path}"], cwd=tmp_path)

    lines = errors(done.stderr)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(lines) == 1 and url in lines[0] and "3 tries" in lines[0]
    took = re.search(r"in (\d+) s", lines[0])
    assert took is not None and int(took.group(1)) <= 2 * 2  # timeout_s x retries


@pytest.mark.slow
def test_the_key_is_sent_to_the_server_and_written_to_no_file(tmp_path: Path) -> None:
    secret = "sk-test-d3adb33f-never-in-a-file"
    with serve([]) as (url, stub):
        done = cli(["evalrunner", *openai_args(url, "model.api_key_env=EVAL_KEY"), f"hydra.run.dir={tmp_path}"],
                   cwd=tmp_path, env={"EVAL_KEY": secret})

    assert done.returncode == 0, done.stderr
    assert {s.authorization for s in stub.seen} == {f"Bearer {secret}"}
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 3 and not [p for p in files if secret.encode() in p.read_bytes()]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["config"]["model"]["api_key_env"] == "EVAL_KEY"
    assert result["engine"]["system_fingerprint"] == ["fp_stub"] and result["engine"]["usage"]["requests"] == 4


@pytest.mark.slow
def test_a_killed_run_resumes_without_resending_its_finished_items(tmp_path: Path) -> None:
    with serve([Reply(), Reply(), Reply(hang_s=120)]) as (url, stub):
        cmd = [sys.executable, "-m", "evalrunner", *openai_args(url, "model.concurrency=1"),
               f"hydra.run.dir={tmp_path}"]
        proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(TESTS)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(stub.seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(stub.seen) == 3  # the first batch of two answered, the second batch's first item hanging

    port = int(url.rsplit(":", 1)[1].split("/")[0])  # the same server again: base_url is part of the config
    with serve([], port) as (url, again):
        done = cli(["evalrunner", *openai_args(url, "model.concurrency=4"), f"hydra.run.dir={tmp_path}"],
                   cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert len(again.seen) == 2 and len(predictions(tmp_path)) == 4


OPENAI = ["model=openai", "model.base_url=http://127.0.0.1:9/v1", "model.model=stub"]


def test_beam_search_is_refused_with_one_line() -> None:
    cfg = compose_cfg([*OPENAI, "dataset=vqav2"])
    backend = OpenAIModel(cfg.model, torch.device("cpu"), 3)
    request = GenerateRequest(1, Prompt(turns=(Turn("user", (Text("what?"),)),)), 5, num_beams=3, length_penalty=0.0)

    with pytest.raises(UserError, match="num_beams=3, but chat completion APIs have no beam search") as e:
        backend.prepare([request])

    assert "\n" not in str(e.value)


def test_ranking_is_refused_with_one_line() -> None:
    cfg = compose_cfg([*OPENAI, "dataset=imagenet"])
    dataset = lookup("dataset", "imagenet")(cfg.dataset, SAMPLE, index.folder(None))

    with pytest.raises(UserError, match="model.name=openai: .* has no rank") as e:
        predictor(dataset, OpenAIModel(cfg.model, torch.device("cpu"), 1), "openai")

    assert "\n" not in str(e.value)
