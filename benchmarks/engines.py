"""Items per second and peak memory of one few-shot VQAv2 job through model=hf, model=vllm and model=openai.

Run as `python benchmarks/engines.py [--checkpoint DIR] [--items 256] [--shots 4]` (`--smoke`:
tests/helpers/tiny_vllm.py's LLaVA, 4 items, 2 shots, for CI). Without --checkpoint it builds
tests/helpers/tiny_vllm.py's random LLaVA. Each engine runs the same greedy job (`dataset=vqav2
dataset.generation.num_beams=1`, the sample data unless --data-root) in a fresh process: hf with batch_size 8, vllm with
the whole job as one batch, openai against vLLM's OpenAI server, which this script starts on loopback (while hf runs)
and stops by its PID. Items/s is num_samples over the job's `timings.generate`; peak memory is the process's maximum
resident set (the server's own for openai, whose client holds no model); GPU memory is not measured (vLLM reserves
`gpu_memory_utilization` of it up front). It exits 1 unless the three engines' predictions are equal. On CPU the figures
show overheads only."""

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TESTS = Path(__file__).parents[1] / "tests"
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_HOST_IP": "127.0.0.1"}


def _load(name: str):  # -> module
    # the test helpers are a package of the checkout's tests/, not of the installed evalrunner
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    return importlib.import_module(f"helpers.{name}")


def build_checkpoint(out: Path) -> Path:
    return Path(_load("tiny_vllm").build_llava_vllm(out / "llava"))


# A fresh wrapper per job: its children's peak resident set is then that one job's.
PEAK = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)")


def job(args: list[str], out: Path, env: dict[str, str]) -> tuple[dict, float]:
    """The job's result.json and the peak resident memory (GiB) of its process, run fresh."""
    cmd = [sys.executable, "-c", PEAK, sys.executable, "-m", "evalrunner", *args, f"hydra.run.dir={out}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent, env={**os.environ, **env})
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args[-3:])} failed:\n{proc.stderr[-3000:]}")
    peak_kib = int(proc.stderr.strip().splitlines()[-1])
    return json.loads((out / "result.json").read_text()), peak_kib / 2**20


def start_server(checkpoint: Path, log: Path, max_len: int, images: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(checkpoint),
           "--served-model-name", "bench", "--host", "127.0.0.1", "--port", str(port), "--max-model-len",
           str(max_len), "--limit-mm-per-prompt", json.dumps({"image": images}), "--seed", "0"]
    if not _cuda():
        cmd += ["--dtype", "float32", "--enforce-eager"]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **VLLM_ENV})
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"vLLM's server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(1)
    sys.exit("vLLM's server did not answer /health in 15 minutes")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def server_rss_gib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 2**20


def main(smoke: bool, checkpoint: Path | None, items: int, shots: int, data_root: str | None) -> int:
    items, shots = (4, 2) if smoke else (items, shots)
    with tempfile.TemporaryDirectory(prefix="evalrunner-engines-") as tmp:
        root = Path(tmp)
        ckpt = checkpoint or build_checkpoint(root)
        max_len = 512 if checkpoint is None else 4096
        common = ["dataset=vqav2", f"shots={shots}", f"num_samples={items}", "dataset.generation.num_beams=1",
                  *([f"data_root={data_root}"] if data_root else [])]
        server, url = start_server(ckpt, root / "server.log", max_len, shots + 1)
        try:
            runs: dict[str, tuple[dict, float]] = {}
            runs["hf"] = job([*common, "model=hf", f"model.path={ckpt}", "batch_size=8"], root / "hf", {})
            vllm_args = [f"model.max_model_len={max_len}"]
            if not _cuda():
                vllm_args.append("model.engine_args={enforce_eager:true}")
            runs["vllm"] = job([*common, "model=vllm", f"model.path={ckpt}", f"batch_size={items}", *vllm_args],
                               root / "vllm", VLLM_ENV)
            wait_healthy(server, url, root / "server.log")
            result, _ = job([*common, "model=openai", f"model.base_url={url}/v1", "model.model=bench",
                             "batch_size=64", "model.concurrency=16"], root / "openai", {})
            runs["openai"] = (result, server_rss_gib(server.pid))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        answers = {name: json.loads((root / name / "predictions.json").read_text()) for name in runs}
    same = answers["vllm"] == answers["hf"] == answers["openai"]
    items = runs["hf"][0]["num_samples"]  # the sample data's split may hold fewer than asked
    print(f"few-shot VQAv2, {shots} shots, {items} items, greedy; checkpoint "
          f"{checkpoint or 'tests/helpers/tiny_vllm.py'}; "
          f"{'GPU' if _cuda() else 'CPU'}")
    print(f"{'engine':10}{'items/s':>10}{'generate s':>12}{'peak RSS GiB':>14}")
    rate = {name: r["num_samples"] / r["timings"]["generate"] for name, (r, _) in runs.items()}
    for name, (result, rss) in runs.items():
        print(f"{name:10}{rate[name]:10.2f}{result['timings']['generate']:12.2f}{rss:14.2f}")
    print(f"vllm / hf items/s: {rate['vllm'] / rate['hf']:.2f}x")
    print(f"predictions equal (hf, vllm, openai): {same}")
    return 0 if same else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the tiny test checkpoint, 4 items, for CI")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a LLaVA-style checkpoint both engines load")
    parser.add_argument("--items", type=int, default=256, help="test items (num_samples)")
    parser.add_argument("--shots", type=int, default=4, help="demos per item")
    parser.add_argument("--data-root", default=None, help="the real data's root (default: the sample data)")
    opts = parser.parse_args()
    sys.exit(main(opts.smoke, opts.checkpoint, opts.items, opts.shots, opts.data_root))
