"""python -m evalrunner.score: rescore saved predictions with another metric setting, or import another tool's.

    python -m evalrunner.score JOB_OR_SWEEP_DIR dataset.vqa_variant=openflamingo
    python -m evalrunner.score --import FILE --format plain JOB_DIR dataset=vqav2 shots=4

No model is loaded: the job's own test items are rebuilt from its result.json's config and data, and its
predictions.json is scored again. The originals are never touched; the new files sit beside them, named after
the overrides (result.dataset.vqa_variant=openflamingo.json).
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evalrunner import jobdir
from evalrunner.errors import UserError
from evalrunner.importers import FORMATS, import_job, read_own
from evalrunner.predictions import write_json_atomic
from evalrunner.scoring import job_items, score_job
from evalrunner.tables import collect, table

# Keys that change how predictions are scored, never what they are: the only ones a rescore may set.
METRIC_KEYS = ("dataset.vqa_variant", "dataset.cider_tokenizer")


def suffix(overrides: list[str]) -> str:
    """`dataset.vqa_variant=openflamingo`: the part of the new files' names that says which setting made them."""
    return ",".join(sorted(overrides))


def _with_overrides(config: dict[str, Any], overrides: list[str], job_dir: Path) -> DictConfig:
    cfg = OmegaConf.create(config)
    for o in overrides:
        key, sep, value = o.partition("=")
        if not sep or key not in METRIC_KEYS:
            raise UserError(f"{o!r}: a rescore sets only {', '.join(k + '=...' for k in METRIC_KEYS)}; "
                            "anything else changes the predictions, so run the job again")
        if OmegaConf.select(cfg, key, default=None) is None:
            raise UserError(f"{key}: the {cfg.dataset.name} job in {job_dir} has no such setting; "
                            "drop it from the command")
        OmegaConf.update(cfg, key, OmegaConf.create({"v": value}).v)  # parsed as YAML, as Hydra does
    return cfg


def rescore_job(job_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """Write result.<suffix>.json and item_scores.<suffix>.json into job_dir; returns the new result."""
    if not overrides:
        raise UserError("give the setting to rescore with, e.g. dataset.vqa_variant=openflamingo")
    path = job_dir / jobdir.RESULT
    if not path.is_file():
        raise UserError(f"JOB_DIR: {path} not found; pass a finished job's folder or a sweep folder")
    original = json.loads(path.read_text())
    cfg = _with_overrides(original["config"], overrides, job_dir)
    dataset, items = job_items(cfg)
    preds_path = job_dir / jobdir.PREDICTIONS
    if not preds_path.is_file():
        raise UserError(f"JOB_DIR: {preds_path} not found; the job saved no predictions to rescore")
    predictions = read_own(dataset, items, preds_path)
    score = score_job(dataset, items, predictions)
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    result = {**original, "score": score.value, **score.extra, "metric": dataset.metric,
              "rescored_from": jobdir.RESULT, "config": resolved}
    # as the job fingerprints itself: its config, then the data it read
    result["config_fingerprint"] = jobdir.fingerprint(_kept(resolved), _batch_invariant(original))
    result["fingerprint"] = jobdir.with_data(result["config_fingerprint"], dataset.data_digest)
    if "vqa_variant" in original:
        result["vqa_variant"] = cfg.dataset.vqa_variant
    tag = suffix(overrides)
    if score.per_item is not None:
        write_json_atomic(job_dir / f"item_scores.{tag}.json", {str(i): s for i, s in sorted(score.per_item.items())})
    write_json_atomic(job_dir / f"result.{tag}.json", result)
    return result


def _kept(resolved: dict[str, Any]) -> dict[str, Any]:
    # as the job fingerprints its config: RICES settings count only for a RICES job
    return {k: v for k, v in resolved.items() if k != "rices" or resolved.get("demo_selection") == "rices"}


def _batch_invariant(original: dict[str, Any]) -> bool:
    """Whether the job fingerprinted without batch_size: the one of the two hashes that matches its own."""
    own = original.get("config_fingerprint", original["fingerprint"])
    return jobdir.fingerprint(_kept(original["config"]), True) == own


def applies(job_dir: Path, overrides: list[str]) -> bool:
    """Whether the job has every setting the overrides change (a VQA job has no cider_tokenizer)."""
    config = OmegaConf.create(json.loads((job_dir / jobdir.RESULT).read_text())["config"])
    return all(OmegaConf.select(config, o.partition("=")[0], default=None) is not None for o in overrides)


def rescore_sweep(sweep_dir: Path, overrides: list[str]) -> list[Path]:
    """Rescore every finished job of a sweep that has the setting, and write a results file per configuration for
    the new setting; a job without it (a caption job for vqa_variant) keeps only its own result."""
    found = collect(sweep_dir, write=False)
    tag = suffix(overrides)
    written = []
    for label, jobs in found.jobs.items():
        chosen = [d for d, _ in jobs if applies(d, overrides)]
        if not chosen:
            continue
        rows = table([rescore_job(d, overrides) for d in chosen])
        # not results.*.json: the collector owns those names, and a sweep over this very key would take them
        name = f"rescored.{tag}.json" if len(found.jobs) == 1 else f"rescored.{found.files[label].stem}.{tag}.json"
        write_json_atomic(sweep_dir / name, rows)
        written.append(sweep_dir / name)
    if not written:
        raise UserError(f"{sweep_dir}: no finished job has {', '.join(o.partition('=')[0] for o in overrides)}; "
                        "check the setting's name and the sweep's datasets")
    return written


def _shown(score: float | None) -> str:
    return "n/a (no public answers)" if score is None else f"{score:.2f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalrunner.score", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, metavar="DIR",
                        help="a job folder, a sweep folder, or (with --import) the new job's folder")
    parser.add_argument("overrides", nargs="*", help="dataset.vqa_variant=... / dataset.cider_tokenizer=...; "
                        "with --import, the job's config (dataset=vqav2 shots=4 ...)")
    parser.add_argument("--import", dest="source", type=Path, metavar="FILE", help="another tool's predictions")
    parser.add_argument("--format", choices=sorted(FORMATS), help="the format of the --import file")
    args = parser.parse_args(argv)
    try:
        if args.source is not None:
            if args.format is None:
                raise UserError(f"--import {args.source}: say its --format ({', '.join(sorted(FORMATS))})")
            result = import_job(args.source, args.format, args.dir, args.overrides)
            print(f"{args.dir}: {result['dataset']} {result['metric']} {_shown(result['score'])} "
                  f"({result['num_samples']} items imported from {args.source})")
        elif not args.dir.is_dir():
            raise UserError(f"DIR: {args.dir} is not a directory; pass a job folder or a sweep folder")
        elif (args.dir / jobdir.RESULT).exists():
            result = rescore_job(args.dir, args.overrides)
            print(f"{args.dir}: {result['metric']} {_shown(result['score'])} -> result.{suffix(args.overrides)}.json")
        else:
            for path in rescore_sweep(args.dir, args.overrides):
                print(f"wrote {path}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
