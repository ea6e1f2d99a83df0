"""Wall time of a 6-job `model=hf` sweep run by one process (Hydra's basic launcher), with and without model reuse.

Run as `python benchmarks/model_reuse.py [--hidden 1024] [--layers 12]` (`--smoke`: tests/helpers/tiny_hf.py's
checkpoint as it is, for CI). The checkpoint is tests/helpers/tiny_hf.py's LLaVA with random weights, its Llama widened
to --hidden and deepened to --layers (the defaults make about 200M parameters, 0.8 GB in float32), so that loading it
costs what a small real checkpoint costs. The sweep is `dataset=vqav2 shots=0,2,4 trial=0,1 num_samples=8` (4 with
--smoke) on the sample data, one greedy token per item, run twice in fresh processes: `reuse_model=true` (the default:
jobs 2-6 take the weights job 1 loaded) and `reuse_model=false` (every job loads them). It prints each run's wall time
and the summed `timings.model_load` of jobs 2-6 (job 1 loads in both runs), and their ratios; it exits 1 unless every
job's predictions.json is byte-identical in both runs and jobs 2-6 of the first run report `model_reused: true`."""

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).parents[1] / "tests"
# One greedy token per item: generation is the same work in both runs, and on a shared machine only adds noise.
SWEEP = ["dataset=vqav2", "shots=0,2,4", "trial=0,1", "batch_size=4", "dataset.generation.max_new_tokens=1",
         "dataset.generation.num_beams=1"]


def build_checkpoint(out: Path, hidden: int | None, layers: int | None) -> Path:
    spec = importlib.util.spec_from_file_location("tiny_hf", TESTS / "helpers" / "tiny_hf.py")
    assert spec is not None and spec.loader is not None
    tiny_hf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny_hf)
    tiny = tiny_hf.build_llava(out / "tiny")
    if hidden is None:
        return Path(tiny)
    import torch
    from transformers import AutoConfig, AutoProcessor, LlavaForConditionalGeneration

    config = AutoConfig.from_pretrained(tiny)
    text = config.text_config
    text.hidden_size, text.intermediate_size, text.num_hidden_layers = hidden, 4 * hidden, layers
    text.num_attention_heads, text.num_key_value_heads = hidden // 64, hidden // 128
    torch.manual_seed(0)
    big = out / "big"
    LlavaForConditionalGeneration(config).eval().save_pretrained(big)
    AutoProcessor.from_pretrained(tiny).save_pretrained(big)
    return big


def sweep(checkpoint: Path, out: Path, reuse: bool, samples: int) -> tuple[float, list[dict]]:
    """Wall time of the sweep in one fresh process, and its jobs' result.json in job order."""
    args = [sys.executable, "-m", "evalrunner", "-m", "model=hf", f"model.path={checkpoint}", *SWEEP,
            f"num_samples={samples}", f"reuse_model={str(reuse).lower()}", f"hydra.sweep.dir={out}"]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"the sweep failed:\n{proc.stderr[-3000:]}")
    # rglob: a job's folder name holds model.path, whose slashes nest it
    jobs = sorted(out.rglob("result.json"),
                  key=lambda p: int((p.parent / ".hydra/hydra.yaml").read_text().split("\n    num: ")[1].split()[0]))
    return wall, [json.loads(p.read_text()) | {"dir": str(p.parent.relative_to(out))} for p in jobs]


def main(smoke: bool, hidden: int | None, layers: int | None) -> int:
    with tempfile.TemporaryDirectory(prefix="evalrunner-reuse-") as tmp:
        root = Path(tmp)
        checkpoint = build_checkpoint(root, None if smoke else hidden, layers)
        samples, rounds = (4, 1) if smoke else (8, 2)
        walls: dict[bool, list[float]] = {True: [], False: []}
        once: list[dict] = []
        every: list[dict] = []
        # Alternating runs, best of `rounds`: the machine's other load shifts generation times by tens of percent.
        for reuse in [True, False, False, True][: 2 * rounds]:
            wall, jobs = sweep(checkpoint, root / f"reuse-{reuse}-{len(walls[reuse])}", reuse, samples)
            walls[reuse].append(wall)
            if reuse:
                once = jobs  # the last run of each
            else:
                every = jobs
        once_wall, every_wall = min(walls[True]), min(walls[False])
        once_dir, every_dir = root / f"reuse-True-{rounds - 1}", root / f"reuse-False-{rounds - 1}"
        same = all((once_dir / j["dir"] / "predictions.json").read_bytes()
                   == (every_dir / j["dir"] / "predictions.json").read_bytes() for j in once)
        reused = [j["model_reused"] for j in once] == [False] + [True] * 5 and len(every) == 6
    # Job 1 loads in both runs (and pays for importing transformers); jobs 2-6 show the difference.
    once_load = sum(j["timings"]["model_load"] for j in once[1:])
    every_load = sum(j["timings"]["model_load"] for j in every[1:])
    size = "tests/helpers/tiny_hf.py LLaVA" if smoke else f"LLaVA, Llama hidden {hidden} x {layers} layers"
    print(f"6-job model=hf sweep in one process ({size}; {' '.join(SWEEP)} num_samples={samples})")
    print(f"{'':22}{f'wall s, best of {rounds}':>18}{'model_load s, jobs 2-6':>24}")
    print(f"{'model reused':22}{once_wall:18.2f}{once_load:24.3f}")
    print(f"{'loaded per job':22}{every_wall:18.2f}{every_load:24.3f}")
    print(f"ratio (per job / reused): wall {every_wall / once_wall:.2f}x, "
          f"model_load {every_load / max(once_load, 1e-6):.0f}x")
    print(f"predictions byte-identical: {same}; jobs 2-6 reused the model: {reused}")
    return 0 if same and reused else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the tiny test checkpoint, for CI")
    parser.add_argument("--hidden", type=int, default=1024, help="the Llama's hidden size")
    parser.add_argument("--layers", type=int, default=12, help="the Llama's layers")
    opts = parser.parse_args()
    sys.exit(main(opts.smoke, opts.hidden, opts.layers))
