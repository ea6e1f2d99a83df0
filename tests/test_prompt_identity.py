"""Requests built by the prompt module give what models/hf.py built itself before it (main at 7561c26), byte for byte.

tests/refdata/requests_identity.json holds, per case, that code's prompt strings, prompt_hash, sort keys, prompt lengths
after truncation and predictions on the tiny checkpoints of tests/helpers/tiny_hf.py: LLaVA and Idefics3 with their chat
template and Flamingo-style (model.chat_template=false), PaliGemma (images first); VQAv2, COCO captions and Hateful
Memes (ranking); demos with images, shown as text only, and cut to fit a short model.max_length."""

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import SAMPLE, compose_cfg

from evalrunner import tasks
from evalrunner.models.hf import HFModel
from evalrunner.registry import lookup

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("transformers", reason="model=hf tests need the hf extra: pip install -e '.[hf]'")

from helpers import tiny_hf  # noqa: E402  (needs transformers)

CASES = json.loads((Path(__file__).parent / "refdata" / "requests_identity.json").read_text())["cases"]


def _name(case: dict[str, Any]) -> str:
    return f"{case['checkpoint']}-{case['style']}-{case['dataset']}-{case['demos']}"


@pytest.fixture(scope="module")
def checkpoints(llava: Path, idefics3: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {"llava": llava, "idefics3": idefics3,
            "paligemma": tiny_hf.build_paligemma(tmp_path_factory.mktemp("paligemma"))}


def _job(case: dict[str, Any], checkpoints: dict[str, Path]) -> tuple[Any, HFModel, tasks.Requester, list, list]:
    """The case's dataset, backend and requests, and its 3 test items with 3 demos each, as they were recorded."""
    cfg = compose_cfg([f"dataset={case['dataset']}", "model=hf", f"model.path={checkpoints[case['checkpoint']]}",
                       *case["overrides"]])
    dataset = lookup("dataset", case["dataset"])(cfg.dataset, SAMPLE)
    backend = HFModel(cfg.model, torch.device("cpu"), 4)
    items, pool = list(dataset.test_items()[:3]), list(dataset.demo_pool()[:9])
    demos = [pool[3 * i : 3 * i + 3] for i in range(3)]
    if case["demos"] == "text_only":
        demos = [[dataclasses.replace(d, image_path="") for d in shown] for shown in demos]
    assert [it.id for it in items] == case["items"]
    return dataset, backend, tasks.Requester(dataset, backend, cfg.dataset), items, demos


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_prompts_hash_sort_keys_and_truncation_are_those_of_the_code_before_requests(
    case: dict[str, Any], checkpoints: dict[str, Path]
) -> None:
    _, backend, requests, items, demos = _job(case, checkpoints)

    texts = [backend.render(requests.request(it, ds).prompt) for it, ds in zip(items, demos, strict=True)]
    assert requests.sort_key is not None
    keys = [requests.sort_key(it, ds) for it, ds in zip(items, demos, strict=True)]
    lengths = backend.prompt_lengths(requests.prepare(items, demos))

    assert requests.prompt_hash == case["prompt_hash"]
    assert texts == case["prompts"]
    assert keys == case["sort_keys"]
    assert lengths == case["lengths"]


# VQAv2 (5 new tokens) in the quick loop; the 20-token captions and the rankings only in CI.
@pytest.mark.parametrize("case", [pytest.param(c, id=_name(c), marks=[pytest.mark.slow] * (c["dataset"] != "vqav2"))
                                  for c in CASES])
def test_predictions_are_those_of_the_code_before_requests(case: dict[str, Any], checkpoints: dict[str, Path]) -> None:
    dataset, backend, requests, items, demos = _job(case, checkpoints)

    predictions = tasks.predictor(dataset, backend, "hf")(items, requests.prepare(items, demos))

    assert predictions == case["predictions"]
