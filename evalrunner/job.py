"""One evaluation job: config -> dataset -> demos -> model -> predictions -> gather -> metric -> result.json.

Every rank runs this whole function. Ranks share out the test items, rank 0 gathers, checks and scores.
"""

import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm

from evalrunner import batches, datasets, demos, distributed, jobdir, protocol, tasks
from evalrunner.datasets import index
from evalrunner.datasets.base import Dataset, Item, check_images, prediction_records
from evalrunner.errors import UserError
from evalrunner.models import Model, reuse
from evalrunner.predictions import PartialWriter, read_partials, write_json_atomic
from evalrunner.registry import lookup

log = logging.getLogger("evalrunner")
SAMPLE_ROOT = Path(__file__).parent / "sample_data"


def data_root(cfg: DictConfig) -> Path:
    if cfg.data_root is None:
        return SAMPLE_ROOT
    root = Path(os.path.expanduser(cfg.data_root))
    if not root.is_dir():
        raise UserError(f"data_root: directory not found: {root}; "
                        "point data_root at the folder holding coco/ and vqav2/")
    return root


def _hydra_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"


def run(cfg: DictConfig, job_dir: Path | None = None) -> float | None:
    """Run the job on this rank; rank 0 returns the score. In a sweep, a failed job is recorded, not raised,
    so the other jobs and the collector carry on and the collector reports it."""
    start = time.perf_counter()
    ranks = distributed.init_ranks(cfg.dist_timeout_s)
    if not ranks.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    out = Path(distributed.broadcast(ranks, str(job_dir or _hydra_dir())))
    try:
        return _run(cfg, ranks, out, start)
    except UserError as e:
        if not _is_multirun():
            # One line, no traceback; SystemExit passes through Hydra's job runner untouched.
            if ranks.is_main:
                print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        _record_failure(ranks, out, str(e))
        return None
    except Exception as e:
        if not _is_multirun():
            raise
        _record_failure(ranks, out, f"{type(e).__name__}: {e}")
        return None


def _record_failure(ranks: distributed.Ranks, out: Path, message: str) -> None:
    log.error("job failed: %s", message)
    if ranks.is_main:
        write_json_atomic(out / jobdir.FAILURE, {"error": message, "traceback": traceback.format_exc()})


def _run(cfg: DictConfig, ranks: distributed.Ranks, out: Path, start: float) -> float | None:
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    if cfg.batch_size < 1:
        raise UserError(f"batch_size={cfg.batch_size}: use a positive number")
    # RICES settings do not touch a job whose demos are random, so changing them must not refuse its folder
    kept = {k: v for k, v in resolved.items() if k != "rices" or resolved.get("demo_selection") == "rices"}
    fp = jobdir.fingerprint(kept, batch_invariant=getattr(lookup("model", cfg.model.name), "batch_invariant", False))
    state: tuple[str, Any] = ("error", None)
    if ranks.is_main:
        try:
            state = ("ok", jobdir.finished_result(out, fp))
        except UserError as e:
            state = ("error", str(e))
    status, found = distributed.broadcast(ranks, state)
    if status == "error":
        raise UserError(found)
    if found is not None:
        log.info("%s already holds the result of this config (%s %s): nothing to do", out, found["metric"],
                 _shown(found["score"]))
        return found["score"]

    root = data_root(cfg)
    sample = cfg.data_root is None
    if sample:
        log.warning("data_root is not set: scoring the bundled SAMPLE data (%s), not the real benchmark", root)
    dataset: Dataset = datasets.build(cfg.dataset, root, index.folder(cfg.index_dir))
    items = demos.select_test_items(dataset.test_items(), cfg.num_samples, cfg.seed)
    check_images(items, f"dataset ({cfg.dataset.name} test images)")
    sampler = demos.build_sampler(cfg, dataset, items, root, ranks, protocol.demo_count(cfg))
    if protocol.text_demos(cfg):
        sampler = protocol.TextOnly(sampler)
    built = reuse.build(cfg.model, cfg.dataset, ranks.device, cfg.reuse_model)  # the previous job's weights, if alike
    model = built.model
    predict = tasks.predictor(dataset, model, cfg.model.name)  # generate or rank, as the dataset's kind says
    loaded = time.perf_counter()

    resumed: dict[int, str] = {}
    if ranks.is_main:
        jobdir.claim(out, fp)
        write_json_atomic(out / jobdir.DEMOS, demos.record(sampler, items))
        resumed = read_partials(out)
        if resumed:
            log.info("resumed %d predictions", len(resumed))
    done = set(distributed.broadcast(ranks, sorted(resumed)))
    error = None
    try:
        # batches: global
        keys = _sort_keys(ranks, model, sampler, items)
        mine = batches.deal(batches.form(items, cfg.batch_size, keys), done, ranks.rank, ranks.world)
        ids, texts = _generate(cfg, ranks, out, predict, model, sampler, mine)
    except Exception as e:
        error, ids, texts = f"{type(e).__name__}: {e}", [], []
        if isinstance(e, UserError) and ranks.world == 1:
            raise
        log.exception("generation failed on rank %d", ranks.rank)
    distributed.check_all_healthy(ranks, error)
    generated = time.perf_counter()

    gathered = distributed.gather_predictions(ranks, ids, texts)
    if gathered is None:
        return None
    predictions = {**gathered, **resumed}
    missing = sorted({it.id for it in items} - predictions.keys())
    if missing:
        raise RuntimeError(f"{len(missing)} test item(s) have no prediction, ids {missing[:20]}; "
                           "rerun the job to resume")
    predictions = {it.id: predictions[it.id] for it in items}
    gathered_at = time.perf_counter()

    # Saved before scoring, so a scoring failure loses no generation.
    write_json_atomic(out / jobdir.PREDICTIONS, prediction_records(dataset, predictions))
    score_start = time.perf_counter()
    scored_ = dataset.score(predictions, items)
    score = scored_.value
    if scored_.per_item is not None:
        write_json_atomic(out / jobdir.ITEM_SCORES, {str(i): s for i, s in sorted(scored_.per_item.items())})
    scored = time.perf_counter()
    result = {
        "dataset": cfg.dataset.name, "model": cfg.model.name, "shots": cfg.shots, "trial": cfg.trial,
        "seed": cfg.seed, "metric": dataset.metric, "score": score, "num_samples": len(items),
        "sample_data": sample, "world_size": ranks.world, "fingerprint": fp, **scored_.extra,
        "protocol": protocol.name(cfg), **({"vqa_variant": cfg.dataset.vqa_variant} if dataset.task == "vqa" else {}),
        **({"prompt_hash": model.prompt_hash} if hasattr(model, "prompt_hash") else {}),
        "model_reused": built.reused,
        # load includes model_load: about 0 when the model was reused from this process's previous job
        "timings": {"load": loaded - start, "model_load": built.seconds, "generate": generated - loaded,
                    "gather": gathered_at - generated, "score": scored - score_start,
                    "total": time.perf_counter() - start},
        "config": resolved,
    }
    write_json_atomic(out / jobdir.RESULT, result)
    log.info("%s %s shots=%d trial=%d: %s %s%s", cfg.dataset.name, cfg.model.name, cfg.shots, cfg.trial,
             dataset.metric, _shown(score), " (SAMPLE data)" if sample else "")
    return score


def _shown(score: float | None) -> str:
    # A split without public answers is scored by the challenge server: predictions.json is the submission.
    return "n/a (submission: predictions.json)" if score is None else f"{score:.2f}"


class _Prepare:
    """The DataLoader's collate_fn: draws each item's demos and lets the model do its CPU work."""

    def __init__(self, model: Model, sampler: demos.Sampler) -> None:
        self.model, self.sampler = model, sampler

    def __call__(self, items: list[Item]) -> tuple[list[Item], Any]:
        return items, self.model.prepare(items, [self.sampler(it) for it in items])


def _sort_keys(ranks: distributed.Ranks, model: Model, sampler: demos.Sampler, items: list[Item]) -> list[int] | None:
    """The model's sort key of every test item (e.g. its prompt length, to cut padding), or None if it has none.

    Each rank computes the keys of every world-th item and all ranks gather them, so the global order costs one
    pass over the test set in all, whatever the number of ranks.
    """
    sort_key = getattr(model, "sort_key", None)
    if sort_key is None:
        return None
    own: tuple[str | None, list[int]]
    try:
        own = (None, [sort_key(it, sampler(it)) for it in items[ranks.rank :: ranks.world]])
    except Exception as e:  # reported by every rank below, so that no rank waits alone in the gather
        own = (f"{type(e).__name__}: {e}", [])
    shares = distributed.all_gather_object(ranks, own)
    failed = [f"rank {r}: {err}" for r, (err, _) in enumerate(shares) if err]
    if failed:
        raise RuntimeError(f"sort_key failed: {'; '.join(failed)}")
    keys = [0] * len(items)
    for r, (_, share) in enumerate(shares):
        keys[r :: ranks.world] = share
    return keys


def _generate(cfg: DictConfig, ranks: distributed.Ranks, out: Path, predict: tasks.Predict, model: Model,
              sampler: demos.Sampler, mine: list[list[Item]]) -> tuple[list[int], list[str]]:
    # batch_size=None: the loader yields our batches as they are, prepared in its workers
    loader: DataLoader[list[Item]] = DataLoader(mine, batch_size=None,  # type: ignore[arg-type]
                                                collate_fn=_Prepare(model, sampler), num_workers=cfg.num_workers)
    writer = PartialWriter(out, ranks.rank)
    ids: list[int] = []
    texts: list[str] = []
    bar = tqdm(total=sum(map(len, mine)), unit="item", disable=not ranks.is_main, dynamic_ncols=True,
               desc=f"{cfg.dataset.name} shots={cfg.shots} trial={cfg.trial}", mininterval=1.0)
    try:
        with torch.inference_mode():
            for batch_items, batch in loader:
                preds = predict(batch_items, batch)
                batch_ids = [it.id for it in batch_items]
                writer.append(batch_ids, preds)
                ids += batch_ids
                texts += preds
                bar.update(len(batch_items))
    finally:
        writer.close()
        bar.close()
    return ids, texts
