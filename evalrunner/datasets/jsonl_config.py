"""The schema of a YAML-only dataset (`format: jsonl`), applied by its loader: the file needs no defaults list.

A wrong or missing key is one line naming it; the defaults are filled into the job's own dataset config, so the
model and the prompt read what they read for a built-in dataset.
"""

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from evalrunner.datasets.base import TASKS
from evalrunner.errors import UserError

METRICS = {"vqa": ("vqa_accuracy", "exact_match"), "caption": ("cider", "exact_match"),
           "classification": ("top1", "roc_auc")}
METRIC_NAMES = {"vqa_accuracy": "VQA accuracy", "cider": "CIDEr", "exact_match": "exact match",
                "top1": "top-1 accuracy", "roc_auc": "ROC-AUC"}
MAX_NEW_TOKENS = {"vqa": 5, "caption": 20}  # as the built-in VQAv2 and COCO
INSTRUCTIONS = {"vqa": "Answer the question with a single word or phrase.",
                "caption": "Write a short caption for the image.",
                "classification": "What is in the image? Answer with its name."}


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
