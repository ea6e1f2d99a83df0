"""One evaluation job: config -> dataset -> demos -> model -> predictions -> gather -> metric -> result.json.

Every rank runs this whole function. Ranks share out the test items, rank 0 gathers, checks and scores.
"""

import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm

from evalrunner import batches, datasets, demos, distributed, environment, jobdir, logs, protocol, tasks
from evalrunner.config import validate
from evalrunner.datasets import index
from evalrunner.datasets.base import Dataset, Item, check_images, prediction_records
from evalrunner.demos import ensemble
from evalrunner.errors import UserError
from evalrunner.models import reuse
from evalrunner.predictions import PartialWriter, read_partials, write_json_atomic
from evalrunner.registry import lookup

log = logging.getLogger("evalrunner")
def _hydra_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"


@dataclass(frozen=True)
class Identity:
    """Who this job is: its config's fingerprint, and the job's, which also covers the data it reads."""

    config_fp: str
    fp: str


@dataclass
class Inputs:
    """Everything the predict phase needs, built after the folder is claimed."""

    root: Path
    sample: bool  # the bundled sample data, not a real benchmark
    dataset: Dataset
    items: list[Item]
    sampler: demos.Sampler
    built: reuse.Built
    requester: tasks.Requester  # builds each item's request and has the backend prepare it
    predict: tasks.Predict
    loaded_at: float


@dataclass
class Outcome:
    """The job's result: its score (None for a submission split) and what result.json holds."""

    score: float | None
    result: dict[str, Any]


def run(cfg: DictConfig, job_dir: Path | None = None) -> float | None:
    """Run the job on this rank; rank 0 returns the score. In a sweep, a failed job is recorded, not raised,
    so the other jobs and the collector carry on and the collector reports it."""
    start = time.perf_counter()
    try:
        ranks = distributed.init_ranks(cfg.dist_timeout_s)
    except Exception as e:  # rank 0's store could not bind its port, or a rank never joined
        if not _is_multirun():
            raise
        first = (str(e).splitlines() or [""])[0]
        message = f"the job's ranks did not form a process group ({type(e).__name__}: {first})"
        log.error("job failed: %s", message)
        if os.environ.get("RANK", "0") == "0":  # the launcher's variable: there is no group to ask
            write_json_atomic((job_dir or _hydra_dir()) / jobdir.FAILURE,
                              {"error": message, "traceback": traceback.format_exc()})
        return None
    logs.for_rank(ranks.rank)
    out = Path(distributed.broadcast(ranks, str(job_dir or _hydra_dir())))
    try:
        with ExitStack() as held:  # rank 0 holds the job folder's lock until the job ends
            outcome = _run(cfg, ranks, out, start, held)
        return outcome.score if outcome is not None else None
    except UserError as e:
        if not _is_multirun():
            logs.to_file(f"error: {e}")  # a sweep's failures are logged by _record_failure
            # One line, no traceback; SystemExit passes through Hydra's job runner untouched.
            if ranks.is_main:
                print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        if isinstance(e, jobdir.InUse):  # the folder is another run's: leave its files alone
            logs.to_file(f"error: {e}")
        else:
            _record_failure(ranks, out, str(e))
        return None
    except Exception as e:
        if not _is_multirun():
            raise
        _record_failure(ranks, out, distributed.explain(ranks, e))
        return None


def _record_failure(ranks: distributed.Ranks, out: Path, message: str) -> None:
    log.error("job failed: %s", message)
    if ranks.is_main:
        write_json_atomic(out / jobdir.FAILURE, {"error": message, "traceback": traceback.format_exc()})


def _run(cfg: DictConfig, ranks: distributed.Ranks, out: Path, start: float, held: ExitStack) -> Outcome | None:
    validate(cfg)
    environment.check_cuda()
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    root = datasets.data_root(cfg)
    dataset: Dataset = datasets.build(cfg.dataset, root, index.folder(cfg.index_dir))
    identity = _identity(cfg, resolved, dataset)
    found = _resume_check(ranks, out, identity, held)
    if found is not None:
        log.info("%s already holds the result of this config (%s %s): nothing to do", out, found["metric"],
                 _shown(found["score"]))
        return Outcome(found["score"], found)
    inputs = _inputs(cfg, ranks, root, dataset, start, lambda: _claim(ranks, out, identity))
    resumed = _resumed(ranks, out, inputs)
    ids, texts = _predict(cfg, ranks, out, inputs, set(distributed.broadcast(ranks, sorted(resumed))))
    generated_at = time.perf_counter()
    predictions = _gather_and_check(ranks, inputs.items, ids, texts, resumed)
    if predictions is None:  # not rank 0: its share is with rank 0
        return None
    gathered_at = time.perf_counter()
    return _score_and_write(cfg, ranks, out, identity, inputs, predictions, resolved,
                            {"start": start, "generated": generated_at, "gathered": gathered_at})


def _identity(cfg: DictConfig, resolved: dict[str, Any], dataset: Dataset) -> Identity:
    # RICES settings do not touch a job whose demos are random, so changing them must not refuse its folder
    kept = {k: v for k, v in resolved.items() if k != "rices" or resolved.get("demo_selection") == "rices"}
    config_fp = jobdir.fingerprint(kept, batch_invariant=getattr(lookup("model", cfg.model.name), "batch_invariant",
                                                                 False))
    return Identity(config_fp, jobdir.with_data(config_fp, dataset.data_digest))


def _resume_check(ranks: distributed.Ranks, out: Path, identity: Identity, held: ExitStack) -> dict[str, Any] | None:
    """The finished result of this job in `out`, or None once rank 0 holds the folder's lock for it.

    The lock is held to the job's end: the check here and the claim (`_claim`, once the inputs are known to be
    good, before the model loads) are one step for any other run, which is refused at once instead of loading a
    model and then appending to this job's files.
    """
    state: tuple[str, Any] = ("error", None)
    if ranks.is_main:
        try:
            held.enter_context(jobdir.locked(out))
            found = jobdir.finished_result(out, identity.fp, identity.config_fp)
            state = ("ok", found)
        except UserError as e:
            state = ("error", str(e))
    status, found = distributed.broadcast(ranks, state)
    if status == "error":
        raise UserError(found)
    return found


def _claim(ranks: distributed.Ranks, out: Path, identity: Identity) -> None:
    if ranks.is_main:
        jobdir.claim(out, identity.fp, identity.config_fp)


def _inputs(cfg: DictConfig, ranks: distributed.Ranks, root: Path, dataset: Dataset, start: float,
            claim: Callable[[], None]) -> Inputs:
    sample = cfg.data_root is None
    if sample:
        log.warning("data_root is not set: scoring the bundled SAMPLE data (%s), not the real benchmark", root)
    items = demos.select_test_items(dataset.test_items(), cfg.num_samples, cfg.seed)
    check_images(items, f"dataset ({cfg.dataset.name} test images)")
    sampler = demos.build_sampler(cfg, dataset, items, root, ranks, protocol.demo_count(cfg))
    if protocol.text_demos(cfg):
        sampler = protocol.TextOnly(sampler)
    claim()  # the data checks passed: a run refused for bad data leaves nothing in its folder
    # the previous job's weights, if alike
    built = reuse.build(cfg.model, ranks.device, protocol.demo_count(cfg) + 1, cfg.reuse_model)
    # dataset.ensemble_permutations: each item's requests under several demo orders, their scores averaged
    requester, backend = ensemble.wrap(tasks.Requester(dataset, built.model, cfg.dataset), built.model, cfg,
                                       dataset.task)
    predict = tasks.predictor(dataset, backend, cfg.model.name)  # generate or rank, as the dataset's task says
    return Inputs(root, sample, dataset, items, sampler, built, requester, predict, time.perf_counter())


def _resumed(ranks: distributed.Ranks, out: Path, inputs: Inputs) -> dict[int, str]:
    """The predictions earlier runs of this job left in its partial files (rank 0 reads them all)."""
    if not ranks.is_main:
        return {}
    write_json_atomic(out / jobdir.DEMOS, demos.record(inputs.sampler, inputs.items))
    resumed = read_partials(out)
    if resumed:
        log.info("resumed %d predictions", len(resumed))
    return resumed


def _predict(cfg: DictConfig, ranks: distributed.Ranks, out: Path, inputs: Inputs,
             done: set[int]) -> tuple[list[int], list[str]]:
    """This rank's predictions of the batches not done yet; every rank learns here whether any rank failed."""
    error = None
    try:
        keys = _sort_keys(ranks, inputs.requester, inputs.sampler, inputs.items)
        per = inputs.built.model.ranks_per_engine
        mine, own = batches.deal(batches.form(inputs.items, cfg.batch_size, keys), done, ranks.rank // per,
                                 ranks.world // per, lockstep=per > 1)
        if ranks.rank % per:  # the engine's first rank records what the engine's ranks all computed
            own = 0
        ids, texts = _generate(cfg, ranks, out, inputs.predict, inputs.requester, inputs.sampler, mine, own)
    except Exception as e:
        error, ids, texts = f"{type(e).__name__}: {e}", [], []
        if isinstance(e, UserError) and ranks.world == 1:
            raise
        log.exception("generation failed on rank %d", ranks.rank)
    distributed.check_all_healthy(ranks, error)
    return ids, texts


def _gather_and_check(ranks: distributed.Ranks, items: list[Item], ids: list[int], texts: list[str],
                      resumed: dict[int, str]) -> dict[int, str] | None:
    """Every test item's prediction in test order, on rank 0; None on the other ranks."""
    gathered = distributed.gather_predictions(ranks, ids, texts)
    if gathered is None:
        return None
    predictions = {**gathered, **resumed}
    missing = sorted({it.id for it in items} - predictions.keys())
    if missing:
        raise RuntimeError(f"{len(missing)} test item(s) have no prediction, ids {missing[:20]}; "
                           "rerun the job to resume")
    return {it.id: predictions[it.id] for it in items}


def _score_and_write(cfg: DictConfig, ranks: distributed.Ranks, out: Path, identity: Identity, inputs: Inputs,
                     predictions: dict[int, str], resolved: dict[str, Any], at: dict[str, float]) -> Outcome:
    dataset, backend, built = inputs.dataset, inputs.built.model, inputs.built
    # Saved before scoring, so a scoring failure loses no generation.
    write_json_atomic(out / jobdir.PREDICTIONS, prediction_records(dataset, predictions))
    score_start = time.perf_counter()
    score = dataset.score(predictions, inputs.items)
    if score.per_item is not None:
        write_json_atomic(out / jobdir.ITEM_SCORES, {str(i): s for i, s in sorted(score.per_item.items())})
    if score.report_data is not None:
        write_json_atomic(out / jobdir.REPORT_DATA, score.report_data)
    scored_at = time.perf_counter()
    result = {
        "dataset": cfg.dataset.name, "model": cfg.model.name, "shots": cfg.shots, "trial": cfg.trial,
        "seed": cfg.seed, "metric": dataset.metric, "score": score.value, "num_samples": len(inputs.items),
        "sample_data": inputs.sample, "world_size": ranks.world, "fingerprint": identity.fp,
        "config_fingerprint": identity.config_fp, **score.extra,
        "protocol": protocol.name(cfg), **({"vqa_variant": cfg.dataset.vqa_variant} if dataset.task == "vqa" else {}),
        **({"prompt_hash": inputs.requester.prompt_hash} if inputs.requester.prompt_hash is not None else {}),
        **({"engine": built.model.engine} if hasattr(built.model, "engine") else {}),  # a serving engine's account
        "model_reused": built.reused,
        # load includes model_load: about 0 when the model was reused from this process's previous job
        "timings": {"load": inputs.loaded_at - at["start"], "model_load": built.seconds,
                    "generate": at["generated"] - inputs.loaded_at, "gather": at["gathered"] - at["generated"],
                    "score": scored_at - score_start, "total": time.perf_counter() - at["start"]},
        "environment": environment.describe(ranks.device, ranks.world, backend),
        "config": resolved,
    }
    write_json_atomic(out / jobdir.RESULT, result)
    log.info("%s %s shots=%d trial=%d: %s %s%s", cfg.dataset.name, cfg.model.name, cfg.shots, cfg.trial,
             dataset.metric, _shown(score.value), " (SAMPLE data)" if inputs.sample else "")
    return Outcome(score.value, result)


def _shown(score: float | None) -> str:
    # A split without public answers is scored by the challenge server: predictions.json is the submission.
    return "n/a (submission: predictions.json)" if score is None else f"{score:.2f}"


class _Prepare:
    """The DataLoader's collate_fn: draws each item's demos and lets the model do its CPU work."""

    def __init__(self, requester: tasks.Requester, sampler: demos.Sampler) -> None:
        self.requester, self.sampler = requester, sampler

    def __call__(self, items: list[Item]) -> tuple[list[Item], Any]:
        return items, self.requester.prepare(items, [self.sampler(it) for it in items])


def _sort_keys(ranks: distributed.Ranks, requester: tasks.Requester, sampler: demos.Sampler,
               items: list[Item]) -> list[int] | None:
    """The model's sort key of every test item (e.g. its prompt length, to cut padding), or None if it has none.

    Each rank computes the keys of every world-th item and all ranks gather them, so the global order costs one
    pass over the test set in all, whatever the number of ranks.
    """
    sort_key = getattr(requester, "sort_key", None)
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


def _generate(cfg: DictConfig, ranks: distributed.Ranks, out: Path, predict: tasks.Predict, requester: tasks.Requester,
              sampler: demos.Sampler, mine: list[list[Item]], own: int) -> tuple[list[int], list[str]]:
    """Runs every batch of `mine`; the predictions of the first `own` are this rank's to record."""
    # batch_size=None: the loader yields our batches as they are, prepared in its workers
    loader: DataLoader[list[Item]] = DataLoader(mine, batch_size=None,  # type: ignore[arg-type]
                                                collate_fn=_Prepare(requester, sampler), num_workers=cfg.num_workers)
    writer = PartialWriter(out, ranks.rank)
    ids: list[int] = []
    texts: list[str] = []
    bar = tqdm(total=sum(map(len, mine[:own])), unit="item", disable=not ranks.is_main, dynamic_ncols=True,
               desc=f"{cfg.dataset.name} shots={cfg.shots} trial={cfg.trial}", mininterval=1.0)
    try:
        with torch.inference_mode():
            for k, (batch_items, batch) in enumerate(loader):
                preds = predict(batch_items, batch)
                if k >= own:
                    continue
                batch_ids = [it.id for it in batch_items]
                writer.append(batch_ids, preds)
                ids += batch_ids
                texts += preds
                bar.update(len(batch_items))
    finally:
        writer.close()
        bar.close()
    return ids, texts
