"""The model loaded once per process: reused by the later jobs of a sweep, rebuilt around them per dataset."""

import gc
import json
import weakref
from pathlib import Path

import pytest
import torch
from helpers import cli, compose_cfg

from evalrunner.models import reuse

CPU = torch.device("cpu")


class Weights:
    """Stands in for a checkpoint: something costly to load, and whose freeing can be watched."""

    loads = 0

    def __init__(self) -> None:
        Weights.loads += 1


class Counting:
    """A test backend whose costly part goes through the cache, keyed by model.size."""

    def __init__(self, cfg: object, device: torch.device, max_images: int) -> None:
        self.weights = reuse.shared("counting", {"size": cfg.size}, device, Weights)  # type: ignore[attr-defined]
        self.max_images = max_images


class Plain:
    """A test backend with no costly part."""

    def __init__(self, cfg: object, device: torch.device, max_images: int) -> None:
        pass


def _build(size: int, max_images: int = 1, enabled: bool = True) -> reuse.Built:
    cfg = compose_cfg(["model.name=test_reuse:Counting", f"+model.size={size}"])
    return reuse.build(cfg.model, CPU, max_images, enabled)


def _jobs(sweep: Path) -> list[dict]:
    # rglob: a job's folder name holds model.path, whose slashes nest it
    return [json.loads(p.read_text()) for p in sorted(sweep.rglob("result.json"), key=lambda p: _num(p.parent))]


def _num(job: Path) -> int:
    return int((job / ".hydra" / "hydra.yaml").read_text().split("\n    num: ")[1].split()[0])


def test_a_second_build_with_the_same_settings_reuses_the_part_and_rebuilds_the_backend_for_its_job() -> None:
    reuse.release()
    first = _build(1, max_images=1)

    second = _build(1, max_images=5)

    assert not first.reused and second.reused
    assert second.model.weights is first.model.weights and second.model is not first.model
    assert (first.model.max_images, second.model.max_images) == (1, 5)


def test_other_settings_load_again_and_free_the_part_held_before() -> None:
    reuse.release()
    old = weakref.ref(_build(1).model.weights)
    loads = Weights.loads

    other = _build(2)
    gc.collect()

    assert not other.reused and Weights.loads == loads + 1
    assert old() is None


def test_with_reuse_off_every_build_loads_and_nothing_is_held() -> None:
    reuse.release()
    kept = weakref.ref(_build(1).model.weights)

    off = [_build(1, enabled=False) for _ in range(2)]
    gc.collect()

    assert not any(b.reused for b in off) and off[0].model.weights is not off[1].model.weights
    assert kept() is None
    assert not _build(1).reused  # the builds with reuse off left nothing behind to reuse


def test_a_model_built_outside_a_job_loads_its_own_part_even_when_one_is_held() -> None:
    held = _build(1).model.weights
    cfg = compose_cfg(["model.name=test_reuse:Counting", "+model.size=1"])

    direct = Counting(cfg.model, CPU, 1)

    assert direct.weights is not held


def test_a_model_that_asks_the_cache_for_nothing_is_never_reported_as_reused() -> None:
    cfg = compose_cfg(["model.name=test_reuse:Plain"])

    builds = [reuse.build(cfg.model, CPU, 1) for _ in range(2)]

    assert not any(b.reused for b in builds)


@pytest.mark.slow
def test_an_hf_sweep_reuses_the_weights_across_datasets_and_predicts_byte_for_byte_as_without(
    llava: Path, tmp_path: Path
) -> None:
    # hatefulmemes ranks with right padding, then the captions generate with left padding on the same tokenizer
    args = ["evalrunner", "-m", "model=hf", f"model.path={llava}", "dataset=vqav2,hatefulmemes,coco", "shots=0,2",
            "num_samples=6", "batch_size=3"]

    reused = cli([*args, f"hydra.sweep.dir={tmp_path / 'reused'}"], tmp_path)
    alone = cli([*args, "reuse_model=false", f"hydra.sweep.dir={tmp_path / 'alone'}"], tmp_path)

    assert reused.returncode == 0 and alone.returncode == 0, reused.stderr[-2000:] + alone.stderr[-2000:]
    with_reuse, without = _jobs(tmp_path / "reused"), _jobs(tmp_path / "alone")
    assert [j["model_reused"] for j in with_reuse] == [False] + [True] * 5
    assert [j["model_reused"] for j in without] == [False] * 6
    assert max(j["timings"]["model_load"] for j in with_reuse[1:]) < min(j["timings"]["model_load"] for j in without)
    jobs = sorted(p.relative_to(tmp_path / "reused") for p in (tmp_path / "reused").rglob("predictions.json"))
    assert len(jobs) == 6
    for job in jobs:
        assert (tmp_path / "reused" / job).read_bytes() == (tmp_path / "alone" / job).read_bytes(), job


@pytest.mark.slow
def test_the_local_launcher_packs_jobs_per_element_and_matches_one_process_per_job(tmp_path: Path) -> None:
    args = ["evalrunner", "-m", "dataset=vqav2", "shots=0,2,4", "num_samples=30"]
    packed, basic = tmp_path / "packed", tmp_path / "basic"

    proc = cli([*args, "hydra/launcher=local", "hydra.launcher.jobs_per_task=2", f"hydra.sweep.dir={packed}"],
               tmp_path)
    assert cli([*args, f"hydra.sweep.dir={basic}"], tmp_path).returncode == 0

    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = sorted(packed.glob("*/result.json"), key=lambda p: _num(p.parent))
    elements = [(p.parent / ".hydra" / "hydra.yaml").read_text().split("\n    id: ")[1].split()[0] for p in jobs]
    assert elements[0] == elements[1] != elements[2]
    assert [json.loads(p.read_text())["model_reused"] for p in jobs] == [False, True, False]
    for p in jobs:
        assert (p.parent / "predictions.json").read_bytes() == (basic / p.parent.name / "predictions.json").read_bytes()


def test_jobs_per_task_below_one_is_refused_naming_the_key(tmp_path: Path) -> None:
    proc = cli(["evalrunner", "-m", "hydra/launcher=local", "hydra.launcher.jobs_per_task=0", "shots=0,2",
                f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path)

    assert proc.returncode != 0
    assert "hydra.launcher.jobs_per_task=0" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "sweep").glob("*/result.json"))
