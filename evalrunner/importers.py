"""Other tools' predictions, read into {id: text} and written as an evalrunner job folder.

Each reader gets the key that names an item in our predictions.json (question_id for VQA, image_id for captions,
VizWiz's image file name) and returns (id, text) pairs; the README shows one example line of every format.
"""

import csv
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from evalrunner import jobdir
from evalrunner.datasets.base import Dataset, Item, prediction_records
from evalrunner.errors import UserError
from evalrunner.predictions import write_atomic, write_json_atomic
from evalrunner.scoring import check_covered, job_items, record_key, score_job

Pairs = list[tuple[Any, Any]]
_TEXT_FIELDS = ("answer", "caption", "prediction", "text")  # whichever the record has, in this order


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"--import {path}: not a JSON file ({e}); check --format") from None


def _field(record: dict[str, Any], names: tuple[str, ...], path: Path, where: str) -> Any:
    for name in names:
        if name in record:
            return record[name]
    raise UserError(f"--import {path}: {where} has none of {', '.join(names)}; check --format and the dataset")


def _openflamingo(path: Path, key: str) -> Pairs:
    """The results file OpenFlamingo's evaluate.py writes: [{"question_id", "answer"}] or [{"image_id", "caption"}]."""
    doc = _load(path)
    if not isinstance(doc, list):
        raise UserError(f"--import {path}: an OpenFlamingo results file is a JSON list; check --format")
    return [(_field(r, (key,), path, f"entry {n}"), _field(r, _TEXT_FIELDS, path, f"entry {n}"))
            for n, r in enumerate(doc)]


def _lmms_eval(path: Path, key: str) -> Pairs:
    """lmms-eval's --log_samples file: one JSON line per sample with its `doc` and `filtered_resps`."""
    text = path.read_text(encoding="utf-8")
    try:
        first = json.loads(text)
        lines = first["logs"] if isinstance(first, dict) else [first]  # older versions: one JSON with "logs"
    except json.JSONDecodeError:
        try:
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise UserError(f"--import {path}: not JSON lines ({e}); check --format") from None
    pairs = []
    for n, sample in enumerate(lines):
        doc = _field(sample, ("doc",), path, f"sample {n}")
        response = _field(sample, ("filtered_resps", "resps"), path, f"sample {n}")
        while isinstance(response, list):  # [text] or [[text]], by version and filter
            response = response[0] if response else ""
        pairs.append((_field(doc, (key,), path, f"sample {n}'s doc"), response))
    return pairs


def _vlmevalkit(path: Path, key: str) -> Pairs:
    """VLMEvalKit's prediction table saved as .tsv or .csv: an id column and `prediction`."""
    if path.suffix not in (".tsv", ".csv"):
        raise UserError(f"--import {path}: save VLMEvalKit's table as .tsv or .csv (from the .xlsx: pandas to_csv)")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ","))
    return [(_field(r, (key, "index"), path, f"row {n + 2}"), _field(r, ("prediction",), path, f"row {n + 2}"))
            for n, r in enumerate(rows)]


def _plain(path: Path, key: str) -> Pairs:
    """A JSON object {id: text}."""
    doc = _load(path)
    if not isinstance(doc, dict):
        raise UserError(f"--import {path}: a plain file is a JSON object {{id: text}}; check --format")
    return list(doc.items())


FORMATS: dict[str, Callable[[Path, str], Pairs]] = {
    "openflamingo": _openflamingo, "lmms-eval": _lmms_eval, "vlmevalkit": _vlmevalkit, "plain": _plain,
}


def by_item(pairs: Pairs, ids: dict[str, int], items: list[Item], source: str) -> dict[int, str]:
    """The pairs keyed by test item id: an id not among the job's test items, or given twice, is an error."""
    out: dict[int, str] = {}
    for ext, text in pairs:
        item = ids.get(str(ext))
        if item is None:
            raise UserError(f"{source}: id {ext} is not one of the job's {len(items)} test items; "
                            "check the dataset, its split, num_samples and data_root")
        if item in out:
            raise UserError(f"{source}: id {ext} has two predictions; keep one per test item")
        out[item] = "" if text is None else str(text)
    check_covered(out, items, source)
    return out


def read_own(dataset: Dataset, items: list[Item], path: Path) -> dict[int, str]:
    """A job's own predictions.json, by test item id."""
    key, ids = record_key(dataset, items)
    return by_item([(r[key], r[dataset.text_key]) for r in json.loads(path.read_text())], ids, items, str(path))


def import_job(source: Path, fmt: str, out: Path, overrides: list[str]) -> dict[str, Any]:
    """Score another tool's predictions as a job of the config `overrides` and write its job folder."""
    from hydra import compose, initialize_config_module

    import evalrunner.config  # noqa: F401  (the schema conf/config.yaml extends)

    if not source.is_file():
        raise UserError(f"--import {source}: file not found")
    if (out / jobdir.RESULT).exists():
        raise UserError(f"{out} already holds a result.json; import into a new folder (nothing was overwritten)")
    start = time.perf_counter()
    with initialize_config_module("evalrunner.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    dataset, items = job_items(cfg)
    key, ids = record_key(dataset, items)
    predictions = by_item(FORMATS[fmt](source, key), ids, items, f"--import {source}")
    score = score_job(dataset, items, predictions)
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    imported = {"file": str(source.resolve()), "format": fmt}
    out.mkdir(parents=True, exist_ok=True)
    (out / ".hydra").mkdir(exist_ok=True)  # what makes the folder a job for the collector and the report
    write_atomic(out / ".hydra" / "overrides.yaml", yaml.safe_dump(list(overrides)).encode())
    write_atomic(out / ".hydra" / "config.yaml", OmegaConf.to_yaml(cfg).encode())
    write_json_atomic(out / jobdir.PREDICTIONS, prediction_records(dataset, predictions))
    if score.per_item is not None:
        write_json_atomic(out / jobdir.ITEM_SCORES, {str(i): s for i, s in sorted(score.per_item.items())})
    result = {
        "dataset": cfg.dataset.name, "model": f"imported:{fmt}", "shots": cfg.shots, "trial": cfg.trial,
        "seed": cfg.seed, "metric": dataset.metric, "score": score.value, "num_samples": len(items),
        "sample_data": cfg.data_root is None, "world_size": 1, **score.extra,
        "fingerprint": jobdir.fingerprint({**resolved, "imported": imported}),
        "protocol": str(OmegaConf.select(cfg, "protocol.name", default="official")),
        **({"vqa_variant": cfg.dataset.vqa_variant} if dataset.task == "vqa" else {}),
        "imported": imported, "timings": {"score": time.perf_counter() - start, "total": time.perf_counter() - start},
        "config": resolved,
    }
    write_json_atomic(out / jobdir.RESULT, result)
    return result
