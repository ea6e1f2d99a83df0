"""RICES: exact retrieval, features computed once per sweep and shared, corrupt caches rebuilt, demos.json."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SAMPLE, cli, compose_cfg
from helpers.tiny_clip import build_clip

from evalrunner import cache, demos
from evalrunner.datasets.base import Item
from evalrunner.demos.rices import _exact, retrieve, select
from evalrunner.job import run
from evalrunner.registry import lookup


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_force(queries: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    """Every similarity in float64, a full sort by (similarity descending, index ascending)."""
    out = []
    for q in queries.astype(np.float64):
        sims = (pool.astype(np.float64) * q).sum(axis=1)
        out.append(np.lexsort((np.arange(len(pool)), -sims))[:k])
    return np.array(out)


def test_retrieval_equals_a_full_sort_with_exact_ties_near_ties_and_duplicates() -> None:
    rng = np.random.default_rng(0)
    pool = _unit(rng, 3000, 32)
    pool[100:140] = pool[7]  # exact duplicates of one image: they tie exactly and must come in index order
    pool[200:260] = pool[9] + rng.standard_normal((60, 32)).astype(np.float32) * 1e-7  # near-ties below fp32 noise
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    queries = np.concatenate([_unit(rng, 300, 32), pool[[7, 9, 100, 230]]])

    for k in (1, 5, 48):
        idx, sims = retrieve(queries, pool, k)

        assert (idx == _brute_force(queries, pool, k)).all()
        assert (np.diff(sims, axis=1) <= 0).all()
    assert list(retrieve(pool[[7]], pool, 41)[0][0]) == [7, *range(100, 140)]


def test_an_exact_similarity_does_not_depend_on_the_other_candidates() -> None:
    rng = np.random.default_rng(1)
    pool, q = _unit(rng, 500, 768), _unit(rng, 1, 768)

    alone = [_exact(q, pool, np.array([[i]]))[0, 0] for i in range(0, 500, 7)]
    together = _exact(q, pool, np.arange(0, 500, 7)[None])[0]

    assert alone == list(together)


def test_an_item_never_gets_a_demo_of_its_own_image_and_the_most_similar_comes_last() -> None:
    rng = np.random.default_rng(2)
    feats = _unit(rng, 20, 8)
    pool = [Item(id=100 + i, image_id=i // 2, image_path=f"{i // 2}.jpg") for i in range(40)]  # 2 questions per image
    pool_rows = np.arange(40) // 2
    items = [Item(id=i, image_id=i, image_path=f"{i}.jpg") for i in range(20)]  # the same images as the pool

    table = select(items, np.arange(20), feats, pool, pool_rows, feats, shots=6)

    for it in items:
        chosen = table[it.id]
        sims = [float(feats[it.image_id] @ feats[pool[i].image_id]) for i in chosen]
        assert len(chosen) == 6 and all(pool[i].image_id != it.image_id for i in chosen)
        assert sims == sorted(sims)  # ascending: the most similar is nearest the query


def _corrupt(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0x01
    path.write_bytes(bytes(raw))


def test_a_cache_file_that_is_truncated_flipped_or_extended_is_not_valid(tmp_path: Path) -> None:
    path = tmp_path / "c.bin"
    cache.write(path, lambda f: f.write(b"x" * 1000))
    good = path.read_bytes()

    assert cache.valid(path)
    for bad in (good[:-1], good[:500], good + b"\0", b""):
        path.write_bytes(bad)
        assert not cache.valid(path)
    path.write_bytes(good)
    _corrupt(path)
    assert not cache.valid(path)
    assert not cache.valid(tmp_path / "absent")


def test_a_failed_write_leaves_no_file_and_ensure_rebuilds_a_corrupt_one(tmp_path: Path) -> None:
    path, builds = tmp_path / "c.bin", []

    def boom(f: object) -> None:
        raise ValueError("half way")

    with pytest.raises(ValueError):
        cache.write(path, boom)
    assert list(tmp_path.iterdir()) == []

    def build() -> None:
        builds.append(1)
        cache.write(path, lambda f: f.write(b"payload"))

    cache.ensure(path, build)
    cache.ensure(path, build)
    _corrupt(path)
    cache.ensure(path, build)

    assert len(builds) == 2 and cache.valid(path)


def test_the_key_changes_with_a_files_size_or_mtime_and_with_the_config(tmp_path: Path) -> None:
    f = tmp_path / "a.jpg"
    f.write_bytes(b"1")
    k = cache.key([f], {"model": "m"})

    assert cache.key([f], {"model": "m"}) == k
    assert cache.key([f], {"model": "n"}) != k
    os.utime(f, ns=(0, 123))
    assert cache.key([f], {"model": "m"}) != k
    with pytest.raises(FileNotFoundError):
        cache.key([tmp_path / "missing.jpg"], {})


_BUILDER = """
import logging, sys, time
from pathlib import Path
from evalrunner import cache
logging.basicConfig(level=logging.INFO)
path, log, go = (Path(a) for a in sys.argv[1:])
def build():
    with open(log, "a") as f:
        f.write("built\\n")
    while not go.exists():
        time.sleep(0.05)
    cache.write(path, lambda f: f.write(b"features"))
cache.ensure(path, build, poll_s=0.05)
print(path.read_bytes()[:8].decode())
"""


def _builder(tmp_path: Path) -> subprocess.Popen[str]:
    args = [tmp_path / "c.bin", tmp_path / "builds.log", tmp_path / "go"]
    return subprocess.Popen([sys.executable, "-c", _BUILDER, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.slow  # real processes, each importing torch
def test_two_processes_build_once_and_the_second_waits_for_the_first(tmp_path: Path) -> None:
    first = _builder(tmp_path)
    _wait_for(tmp_path / "builds.log")  # the first holds the lock and is building
    second = _builder(tmp_path)
    assert second.stderr is not None
    line = "not started"
    while line and "waiting for" not in line:  # it can only wait: the first holds the lock until "go"
        line = second.stderr.readline()
    (tmp_path / "go").touch()

    outs = [p.communicate(timeout=60) for p in (first, second)]

    assert "waiting for" in line and f"pid {first.pid}" in line
    assert [p.returncode for p in (first, second)] == [0, 0]
    assert [o.strip() for o, _ in outs] == ["features", "features"]
    assert (tmp_path / "builds.log").read_text() == "built\n"


@pytest.mark.slow  # real processes, each importing torch
def test_a_builder_that_dies_leaves_no_stale_lock(tmp_path: Path) -> None:
    first = _builder(tmp_path)
    _wait_for(tmp_path / "builds.log")
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    (tmp_path / "go").touch()
    second = _builder(tmp_path)

    out, _ = second.communicate(timeout=60)

    assert out.strip() == "features"
    assert (tmp_path / "builds.log").read_text() == "built\nbuilt\n"


def _reference_features(clip: Path, paths: list[str], batch: int) -> np.ndarray:
    """Image embeddings straight from transformers, in the same global batches, without evalrunner's code."""
    import torch
    from PIL import Image
    from transformers import CLIPImageProcessor, CLIPModel

    model, proc = CLIPModel.from_pretrained(clip).eval(), CLIPImageProcessor.from_pretrained(clip)
    rows = []
    for s in range(0, len(paths), batch):
        pixels = proc(images=[Image.open(p).convert("RGB") for p in paths[s : s + batch]], return_tensors="pt")
        with torch.inference_mode():
            out = model.get_image_features(pixel_values=pixels["pixel_values"])
        emb = out if isinstance(out, torch.Tensor) else out.pooler_output
        rows.append(torch.nn.functional.normalize(emb, dim=-1).numpy())
    return np.concatenate(rows)


def _job(tmp_path: Path, name: str, overrides: list[str]) -> Path:
    out = tmp_path / name
    out.mkdir()
    run(compose_cfg(overrides), out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["coco", "vqav2"])
def test_demos_json_is_the_brute_force_top_k_of_independently_computed_features(tmp_path: Path, clip: Path,
                                                                                dataset: str) -> None:
    args = [f"dataset={dataset}", "shots=5", "num_samples=40", "demo_selection=rices", f"rices.model={clip}",
            f"rices.cache_dir={tmp_path / 'cache'}", "rices.batch_size=48"]
    out = _job(tmp_path, "run", args)
    ds = lookup("dataset", dataset)(compose_cfg(args).dataset, SAMPLE)
    pool, items = ds.demo_pool(), demos.select_test_items(ds.test_items(), 40, 42)
    pool_paths = list(dict.fromkeys(it.image_path for it in pool))
    ref = _reference_features(clip, pool_paths, 48)
    [cached] = [np.load(p) for p in (tmp_path / "cache").glob(f"{dataset}-demo-images-*.npy")]
    ref_items = _reference_features(clip, list(dict.fromkeys(it.image_path for it in items)), 48)

    assert np.array_equal(cached, ref)  # bit for bit: the same global batches
    row = {p: i for i, p in enumerate(pool_paths)}
    item_row = {p: i for i, p in enumerate(dict.fromkeys(it.image_path for it in items))}
    pool_feats = ref[[row[it.image_path] for it in pool]].astype(np.float64)
    recorded = json.loads((out / "demos.json").read_text())
    assert sorted(recorded) == sorted(str(it.id) for it in items)
    for it in items:
        sims = (pool_feats * ref_items[item_row[it.image_path]].astype(np.float64)).sum(axis=1)
        sims[[p.image_id == it.image_id for p in pool]] = -np.inf
        best = np.lexsort((np.arange(len(pool)), -sims))[:5][::-1]
        assert recorded[str(it.id)] == [pool[i].id for i in best]


@pytest.mark.slow
def test_a_corrupted_cache_is_rebuilt_and_gives_the_same_demos(tmp_path: Path, clip: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="evalrunner")
    args = ["dataset=coco", "shots=3", "num_samples=20", "demo_selection=rices", f"rices.model={clip}",
            f"rices.cache_dir={tmp_path / 'cache'}"]
    first = _job(tmp_path, "first", args)
    [features] = (tmp_path / "cache").glob("coco-demo-images-*.npy")
    _corrupt(features)
    caplog.clear()

    second = _job(tmp_path, "second", args)

    assert cache.valid(features)
    assert [r.getMessage().split(" with ")[0] for r in caplog.records if "computing RICES" in r.getMessage()] == [
        "computing RICES features of 400 coco demo images"]  # the test images' file was whole: reused
    assert (first / "demos.json").read_text() == (second / "demos.json").read_text()


def test_random_demos_json_lists_the_samplers_demos_in_prompt_order(tmp_path: Path) -> None:
    args = ["dataset=vqav2", "shots=3", "num_samples=30"]
    out = _job(tmp_path, "run", args)
    cfg = compose_cfg(args)
    ds = lookup("dataset", "vqav2")(cfg.dataset, SAMPLE)
    items = demos.select_test_items(ds.test_items(), 30, cfg.seed)
    sampler = demos.DemoSampler(demos.query_set(ds.demo_pool(), cfg.query_set_size, cfg.seed, 0), 3, cfg.seed, 0)

    recorded = json.loads((out / "demos.json").read_text())

    assert recorded == {str(it.id): [d.id for d in sampler(it)] for it in items}


def test_rices_without_a_model_is_a_one_line_error_naming_rices_model(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _job(tmp_path, "run", ["demo_selection=rices", "num_samples=5"])

    assert "rices.model is not set" in capsys.readouterr().err
    assert not (tmp_path / "run" / "demos.json").exists()


@pytest.mark.slow
def test_one_two_and_three_ranks_compute_the_same_features_demos_and_predictions(tmp_path: Path, clip: Path) -> None:
    outputs = []
    for n in (1, 2, 3):
        run_dir, cache_dir = tmp_path / f"n{n}", tmp_path / f"cache{n}"
        proc = cli([f"--nproc_per_node={n}", "-m", "evalrunner", "dataset=vqav2", "shots=4", "num_samples=30",
                    "demo_selection=rices", f"rices.model={clip}", f"rices.cache_dir={cache_dir}",
                    "rices.batch_size=48", f"hydra.run.dir={run_dir}"], tmp_path,
                   launcher=(sys.executable, "-m", "torch.distributed.run", "--standalone"),
                   env={"OMP_NUM_THREADS": "1"})  # torchrun sets it for n > 1; CPU kernels round by thread count
        assert proc.returncode == 0, proc.stderr[-3000:]
        features = [p.read_bytes() for p in sorted(cache_dir.glob("*.npy"))]
        outputs.append([(run_dir / f).read_text() for f in ("demos.json", "predictions.json")] + features)

    assert len(outputs[0]) == 4
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.slow
def test_a_sweep_computes_features_once_and_gives_one_table_per_demo_selection(tmp_path: Path, clip: Path) -> None:
    sweep = tmp_path / "sweep"

    # The local launcher starts the four jobs at once: the two RICES jobs race for the same features.
    proc = cli(["evalrunner", "-m", "hydra/launcher=local", "dataset=coco", "shots=1,2", "num_samples=20",
                "demo_selection=random,rices", f"rices.model={clip}", f"rices.cache_dir={tmp_path / 'cache'}",
                f"hydra.sweep.dir={sweep}"], tmp_path, timeout=400)

    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = "".join(p.read_text() for p in sweep.rglob("*.log"))
    assert logs.count("computing RICES features of 400 coco demo images") == 1
    assert logs.count("computing RICES features of 20 coco test images") == 1
    assert logs.count("every trial gets the SAME demos") == 2
    assert len(list(sweep.rglob("demos.json"))) == 4
    tables = sorted(p.name for p in sweep.glob("results*.json"))
    assert tables == ["results.demo_selection=random.json", "results.demo_selection=rices.json"]
    rices_table = json.loads((sweep / "results.demo_selection=rices.json").read_text())
    assert [r["shots"] for r in rices_table["coco"]] == [1, 2]
