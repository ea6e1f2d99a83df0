"""Session fixtures for the engine tests: the tiny LLaVA both engines load, and vLLM's OpenAI server on it.

The server starts once per test session, on loopback only, and is stopped by its PID. Without vLLM the tests that
need it skip, except under CI=true, where .ci/test-env.sh installs it and a missing vLLM is a failure.
"""

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# vLLM on a CPU shared with other work: a small KV cache, the engine in-process (starts in seconds, not half a minute).
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_HOST_IP": "127.0.0.1"}
ENGINE_OVERRIDES = ["model.max_model_len=512", "model.engine_args={enforce_eager:true,max_num_seqs:8}"]
SERVED_NAME = "tiny-llava"


def need_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but vLLM is not installed: .ci/test-env.sh runs scripts/install_vllm_cpu.sh")
        pytest.skip("vLLM is not installed (bash scripts/install_vllm_cpu.sh)")


@pytest.fixture(scope="session")
def vllm_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LLaVA with a chat template that transformers and vLLM both load (tests/helpers/tiny_vllm.py)."""
    pytest.importorskip("transformers", reason="needs the hf extra: pip install -e '.[hf]'")
    from helpers import tiny_vllm

    return tiny_vllm.build_llava_vllm(tmp_path_factory.mktemp("vllm_llava"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def vllm_server(vllm_llava: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (…/v1) of vLLM's OpenAI server on the tiny LLaVA, serving it as SERVED_NAME."""
    need_vllm()
    port = _free_port()
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    # `vllm serve` looks up a distribution named vllm, and the CPU build is vllm-cpu: run the module instead.
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(vllm_llava),
           "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--max-model-len", "512", "--enforce-eager", "--max-num-seqs", "8", "--limit-mm-per-prompt",
           '{"image": 4}', "--seed", "0"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **VLLM_ENV})
    try:
        deadline = time.monotonic() + 600
        while not _healthy(f"http://127.0.0.1:{port}/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vLLM's server did not come up (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
