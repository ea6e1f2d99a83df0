"""A dataset from one YAML file and two JSON-lines files, no Python: `format: jsonl` in conf/dataset/<name>.yaml.

The YAML needs no defaults list: this loader applies its schema (JsonlConfig), names a wrong or missing key in one
line, and fills the defaults into the job's dataset config, so the model and the prompt read what they always read.
Records, one per line: vqa `{id, image, question, answers}`, caption `{id, image, captions}`, classification
`{id, image, label}` (`text` optional, the {question} of the prompt); an optional `answer` is what a demo shows
(default: the most frequent of `answers`, the first of `captions`, the label). `image` is relative to image_root.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from evalrunner.datasets.base import TASKS, Dataset, Item, Score, resolve
from evalrunner.datasets.captions import CaptionDataset
from evalrunner.datasets.entries import integer, items_from, jsonl, lines
from evalrunner.datasets.hatefulmemes import p_second
from evalrunner.datasets.vqa_base import VQADataset, check_answers, check_variant, demo_answer, demo_items
from evalrunner.errors import UserError
from evalrunner.metrics.classification import roc_auc, topk_hits
from evalrunner.registry import register

METRICS = {"vqa": ("vqa_accuracy", "exact_match"), "caption": ("cider", "exact_match"),
           "classification": ("top1", "roc_auc")}
METRIC_NAMES = {"vqa_accuracy": "VQA accuracy", "cider": "CIDEr", "exact_match": "exact match",
                "top1": "top-1 accuracy", "roc_auc": "ROC-AUC"}
MAX_NEW_TOKENS = {"vqa": 5, "caption": 20}  # as the built-in VQAv2 and COCO
INSTRUCTIONS = {"vqa": "Answer the question with a single word or phrase.",
                "caption": "Write a short caption for the image.",
                "classification": "What is in the image? Answer with its name."}
TOP_K = 5


@dataclass
class JsonlGeneration:
    max_new_tokens: int | None = None  # None = 5 for vqa, 20 for caption
    num_beams: int = 3
    length_penalty: float = 0.0


@dataclass
class JsonlPrompt:
    demo: str = MISSING  # with {question} and {answer}
    query: str = MISSING
    separator: str = "\n"
    instruction: str | None = None  # None = a generic one for the task


@dataclass
class JsonlConfig:
    name: str = MISSING  # the dataset's name in results and reports
    format: str = "jsonl"
    task: str = MISSING  # vqa | caption | classification
    test_file: str = MISSING  # JSON lines, relative to data_root or absolute
    demo_file: str = MISSING
    image_root: str = MISSING  # each record's `image` is relative to it
    metric: str = MISSING  # vqa_accuracy | exact_match (vqa); cider | exact_match (caption); top1 | roc_auc
    vqa_variant: str = "official"  # metric=vqa_accuracy: official | vqa2016 | openflamingo | textvqa
    cider_tokenizer: str = "python"  # metric=cider: python | java
    candidates: Any = None  # classification: a list of class names, or a file of one name per line
    prompt: JsonlPrompt = field(default_factory=JsonlPrompt)
    generation: JsonlGeneration = field(default_factory=JsonlGeneration)


def checked(cfg: DictConfig) -> DictConfig:
    """The config with the schema's defaults; a wrong key, a wrong type or a missing key is one line naming it."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(JsonlConfig), OmegaConf.to_container(cfg, resolve=True))
    except ConfigKeyError as e:
        raise UserError(f"dataset.{e.full_key} is not a key of a format: jsonl dataset; its keys are "
                        f"{', '.join(JsonlConfig.__dataclass_fields__)}") from None
    except OmegaConfBaseException as e:  # a value of the wrong type
        raise UserError(f"dataset.{e.full_key}: {str(e).splitlines()[0]}; fix it in the dataset's YAML") from None
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
        raise UserError(f"dataset.{missing[0]} is missing: a format: jsonl dataset needs name, task, test_file, "
                        "demo_file, image_root, metric and prompt.demo/prompt.query")
    if merged.task not in TASKS:
        raise UserError(f"dataset.task={merged.task!r}: choose {', '.join(TASKS)}")
    if merged.metric not in METRICS[merged.task]:
        raise UserError(f"dataset.metric={merged.metric!r} does not fit task {merged.task}: choose "
                        f"{' or '.join(METRICS[merged.task])}")
    if merged.prompt.instruction is None:
        merged.prompt.instruction = INSTRUCTIONS[merged.task]
    if merged.generation.max_new_tokens is None:
        merged.generation.max_new_tokens = MAX_NEW_TOKENS.get(merged.task, 1)
    return merged


def fill(cfg: DictConfig, merged: DictConfig) -> None:
    """The job's dataset config gains the defaults, so every later reader (model, prompt) sees one config."""
    keep = {k: v for k, v in OmegaConf.to_container(merged).items()  # type: ignore[union-attr]
            if not (k == "generation" and merged.task == "classification")}  # ranking generates nothing
    with open_dict(cfg):
        for k, v in keep.items():
            cfg[k] = v


class JsonlFiles(Dataset):
    """Reading the two files; a subclass per task turns one record into an Item."""

    files = ("test_file", "demo_file")
    folders = ("image_root",)
    shape = ""

    def __init__(self, cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> None:
        self.metric_key = str(cfg.metric)
        self.metric = METRIC_NAMES[self.metric_key]
        super().__init__(cfg, data_root, index_dir)

    def parse(self) -> tuple[list[Item], list[Item]]:
        image_ids: dict[str, int] = {}  # image path -> a number, shared by the splits: demos of the same image differ
        test, demos = (self._load(k, image_ids) for k in self.files)
        return test, demo_items(demos, "dataset.demo_file", self.paths["demo_file"])

    def _load(self, key: str, image_ids: dict[str, int]) -> list[Item]:
        path = self.paths[key]

        def make(rec: dict[str, Any]) -> Item:
            if not isinstance(rec.get("image"), str):
                raise KeyError("image")
            image = str(self.paths["image_root"] / rec["image"])
            return self.item(rec, integer(rec["id"]), image_ids.setdefault(image, len(image_ids)), image)

        shape = f"{self.shape} for task {self.task}"
        items = items_from(jsonl(path, f"dataset.{key}", "a JSON-lines file"), make, f"dataset.{key}", path, shape,
                           where="line")
        check_answers(items, f"dataset.{key}", path)
        return items

    def item(self, rec: dict[str, Any], item_id: int, image_id: int, image: str) -> Item:
        raise NotImplementedError


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"'{field}' must be a list of strings")
    return tuple(value)


def _exact(predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
    per_item = {it.id: 100.0 * (predictions[it.id].strip().lower() in {r.strip().lower() for r in it.references})
                for it in items}
    return Score(sum(per_item.values()) / len(per_item), per_item)


class JsonlVQA(JsonlFiles, VQADataset):
    shape = '{"id", "image", "question", "answers": [...]}'

    def configure(self, cfg: DictConfig) -> None:
        self.variant = check_variant(cfg)

    def item(self, rec: dict[str, Any], item_id: int, image_id: int, image: str) -> Item:
        humans = _strings(rec.get("answers", []), "answers")
        answer = rec.get("answer", demo_answer(humans, "majority"))
        return Item(id=item_id, image_id=image_id, image_path=image, question=str(rec["question"]),
                    answer=str(answer), references=humans)

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        if self.metric_key == "exact_match" and any(it.references for it in items):
            return _exact(predictions, items)
        return super().score(predictions, items)


class JsonlCaptions(JsonlFiles, CaptionDataset):
    shape = '{"id", "image", "captions": [...]}'

    def item(self, rec: dict[str, Any], item_id: int, image_id: int, image: str) -> Item:
        captions = _strings(rec["captions"], "captions")
        if not captions:
            raise ValueError("'captions' is empty")
        return Item(id=item_id, image_id=item_id, image_path=image, answer=str(rec.get("answer", captions[0])),
                    references=captions)

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        return _exact(predictions, items) if self.metric_key == "exact_match" else super().score(predictions, items)


class JsonlClassification(JsonlFiles):
    task = "classification"
    shape = '{"id", "image", "label"} (optional "text"), label a candidate or its position'
    id_key = "id"

    def configure(self, cfg: DictConfig) -> None:
        value = cfg.candidates
        if isinstance(value, str):
            path = resolve(self.data_root, "dataset.candidates", value)
            self.paths["candidates"] = path
            self.candidates = [t.strip() for _, t in lines(path, "dataset.candidates", "a file of one name per line")]
        elif value is not None and all(isinstance(v, str) for v in value):
            self.candidates = [str(v) for v in value]
        if len(self.candidates) < 2 or len(set(self.candidates)) < len(self.candidates):
            raise UserError("dataset.candidates: a classification dataset needs two or more distinct class names, "
                            "as a list or a file of one name per line")
        if self.metric_key == "roc_auc" and len(self.candidates) != 2:
            raise UserError(f"dataset.metric=roc_auc needs exactly two candidates (negative, positive); "
                            f"dataset.candidates has {len(self.candidates)}")
        self.text_key = "proba" if self.metric_key == "roc_auc" else "class"

    def sources(self) -> list[Path]:
        return [*super().sources(), *([self.paths["candidates"]] if "candidates" in self.paths else [])]

    def item(self, rec: dict[str, Any], item_id: int, image_id: int, image: str) -> Item:
        label = rec["label"]
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(self.candidates):
            label = self.candidates[label]
        if label not in self.candidates:
            raise ValueError(f"label {label!r} is not one of dataset.candidates")
        return Item(id=item_id, image_id=image_id, image_path=image, question=str(rec.get("text", "")),
                    answer=str(rec.get("answer", label)), references=(label,))

    def decide(self, mean: np.ndarray) -> Any:
        if self.metric_key == "roc_auc":
            return p_second(mean)  # P(the second candidate), the positive class
        return [self.candidates[j] for j in np.argsort(-mean, kind="stable")[:TOP_K]]

    def record(self, item_id: int, prediction: str) -> dict[str, Any]:
        decided = json.loads(prediction)
        if self.metric_key == "roc_auc":
            return {"id": item_id, "proba": decided, "label": int(decided > 0.5)}
        return {"id": item_id, "class": decided[0], "top5": decided}

    def score(self, predictions: Mapping[int, str], items: Sequence[Item]) -> Score:
        decided = [json.loads(predictions[it.id]) for it in items]
        if self.metric_key == "roc_auc":
            labels = [self.candidates.index(it.references[0]) for it in items]
            if len(set(labels)) < 2:
                raise UserError("dataset.test_file: ROC-AUC needs items of both classes among the test items; "
                                "use more of them (num_samples)")
            return Score(100 * roc_auc(decided, labels))
        top1 = topk_hits(decided, [it.references[0] for it in items], 1)
        top5 = topk_hits(decided, [it.references[0] for it in items], TOP_K)
        return Score(100 * sum(top1) / len(items), {it.id: 100.0 * h for it, h in zip(items, top1)},
                     {"top5": 100 * sum(top5) / len(items)})


CLASSES: dict[str, type[JsonlFiles]] = {"vqa": JsonlVQA, "caption": JsonlCaptions,
                                        "classification": JsonlClassification}


@register("format", "jsonl")
def jsonl_dataset(cfg: DictConfig, data_root: Path, index_dir: Path | None = None) -> Dataset:
    merged = checked(cfg)
    fill(cfg, merged)
    return CLASSES[merged.task](cfg, data_root, index_dir)
