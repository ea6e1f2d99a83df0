"""model=hf ranking: batched scoring against each prompt's KV cache equals a plain forward over prompt + candidate."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAMPLE, compose_cfg

from evalrunner.datasets.base import Item
from evalrunner.models.hf import HFModel
from evalrunner.registry import lookup

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("transformers", reason="model=hf tests need the hf extra: pip install -e '.[hf]'")

import tiny_hf  # noqa: E402  (needs transformers)

CPU = torch.device("cpu")
# One to eight tokens each, in an order that is not by length, and one word the tiny vocabulary lacks.
CANDIDATES = ["a red circle", "circle", "there is a gray triangle in the image", "yes", "a simple drawing",
              "no", "the blue one", "zebra"]
BUILDERS = {"llava": tiny_hf.build_llava, "idefics3": tiny_hf.build_idefics3, "paligemma": tiny_hf.build_paligemma}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def adapter(path: Path, *overrides: str) -> HFModel:
    cfg = compose_cfg(["dataset=hatefulmemes", "model=hf", f"model.path={path}", "model.dtype=float32", *overrides])
    return HFModel(cfg.model, cfg.dataset, CPU)


def _items(n: int, pool: bool = False) -> list[Item]:
    ds = lookup("dataset", "hatefulmemes")(compose_cfg(["dataset=hatefulmemes"]).dataset, SAMPLE)
    return (ds.demo_pool() if pool else ds.test_items())[:n]


def _uncached(model: HFModel, item: Item, demos: list[Item], candidates: list[str]) -> list[tuple[float, int]]:
    """The reference: the item alone (no padding), one plain forward over its prompt followed by each candidate."""
    prompt = {k: v for k, v in model.prepare([item], [demos]).items() if k != "labels"}
    n = prompt["input_ids"].shape[1]
    scores = []
    for candidate in candidates:
        ids = model.tokenizer(candidate, add_special_tokens=False)["input_ids"]
        extra = torch.tensor([ids])
        inputs = dict(prompt)
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            # token_type_ids (PaliGemma): the candidate is the causal suffix, as generated tokens are
            if key in inputs:
                inputs[key] = torch.cat([inputs[key], extra if key == "input_ids" else torch.ones_like(extra)], dim=1)
        with torch.inference_mode():
            logprobs = model.model(**inputs).logits[0].double().log_softmax(dim=-1)
        scores.append((float(sum(logprobs[n - 1 + t, tok] for t, tok in enumerate(ids))), len(ids)))
    return scores


def test_cached_batched_ranking_equals_an_uncached_forward_per_candidate_in_padded_batches(checkpoint: Path) -> None:
    model = adapter(checkpoint, "model.rank_chunk=3")  # several chunks of mixed lengths
    items, pool = _items(3), _items(6, pool=True)
    demos = [[], pool[:1], pool[1:4]]  # prompts of three lengths: the batch is padded
    batch = model.prepare(items, demos)
    assert len(set(batch["attention_mask"].sum(dim=1).tolist())) == 3

    ranked = model.rank(batch, CANDIDATES)

    assert ranked.total.shape == ranked.mean.shape == (3, len(CANDIDATES))
    for i, (item, ds) in enumerate(zip(items, demos)):
        for j, (total, tokens) in enumerate(_uncached(model, item, ds, CANDIDATES)):
            assert ranked.total[i, j] == pytest.approx(total, abs=1e-4), (i, CANDIDATES[j])
            assert ranked.mean[i, j] == pytest.approx(total / tokens, abs=1e-4)


def test_a_left_padded_batch_ranks_as_the_uncached_forward_too(checkpoint: Path) -> None:
    model = adapter(checkpoint)
    model.tokenizer.padding_side = "left"  # as the generation path pads
    items, pool = _items(2), _items(3, pool=True)
    demos = [pool[:3], []]
    batch = model.prepare(items, demos)
    assert not batch["attention_mask"][:, 0].all()

    ranked = model.rank(batch, CANDIDATES[:4])

    for i, (item, ds) in enumerate(zip(items, demos)):
        for j, (total, _) in enumerate(_uncached(model, item, ds, CANDIDATES[:4])):
            assert ranked.total[i, j] == pytest.approx(total, abs=1e-4), (i, CANDIDATES[j])


def test_the_chunk_size_changes_no_score_beyond_rounding(checkpoint: Path) -> None:
    items, pool = _items(2), _items(4, pool=True)
    one, many = adapter(checkpoint, "model.rank_chunk=1"), adapter(checkpoint, "model.rank_chunk=64")
    batch = one.prepare(items, [pool[:2], pool[2:3]])

    a, b = one.rank(batch, CANDIDATES), many.rank(batch, CANDIDATES)

    np.testing.assert_allclose(a.total, b.total, atol=1e-5)
    assert a.total.dtype == np.float64


def test_generation_still_pads_left_and_ranking_pads_right(checkpoint: Path) -> None:
    cfg = compose_cfg(["dataset=vqav2", "model=hf", f"model.path={checkpoint}"])
    generator = HFModel(cfg.model, cfg.dataset, CPU)
    items, pool = _items(2), _items(2, pool=True)

    left = generator.prepare(items, [[], pool])["attention_mask"]
    right = adapter(checkpoint).prepare(items, [[], pool])["attention_mask"]

    assert left[:, -1].all() and not left[:, 0].all()
    assert right[:, 0].all() and not right[:, -1].all()
