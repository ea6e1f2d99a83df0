"""model=hf ranking: batched scoring against each prompt's KV cache equals a plain forward over prompt + candidate."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SAMPLE, compose_cfg

from evalrunner import tasks
from evalrunner.datasets.base import Item
from evalrunner.models.hf import Encoded, HFModel
from evalrunner.registry import lookup
from evalrunner.requests import GenerateRequest, RankRequest

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("transformers", reason="model=hf tests need the hf extra: pip install -e '.[hf]'")

from helpers import tiny_hf  # noqa: E402  (needs transformers)

CPU = torch.device("cpu")
# One to eight tokens each, in an order that is not by length, and one word the tiny vocabulary lacks.
CANDIDATES = ["a red circle", "circle", "there is a gray triangle in the image", "yes", "a simple drawing",
              "no", "the blue one", "zebra"]
BUILDERS = {"llava": tiny_hf.build_llava, "idefics3": tiny_hf.build_idefics3, "paligemma": tiny_hf.build_paligemma}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


class Ranker:
    """A tiny model given Hateful Memes items (or, with dataset="vqav2", the same as generation requests), ranking
    them against any candidates."""

    def __init__(self, path: Path, *overrides: str, dataset: str = "hatefulmemes") -> None:
        cfg = compose_cfg([f"dataset={dataset}", "model=hf", f"model.path={path}", "model.dtype=float32", *overrides])
        self.backend = HFModel(cfg.model, CPU, 4)
        self.requests = tasks.Requester(lookup("dataset", dataset)(cfg.dataset, SAMPLE), self.backend, cfg.dataset)

    def prepare(self, items: list[Item], demos: list[list[Item]]) -> Encoded:
        batch: Encoded = self.requests.prepare(items, demos)
        return batch

    def rank(self, batch: Encoded, candidates: list[str]) -> np.ndarray:
        batch.requests = [RankRequest(r.item_id, r.prompt, tuple(candidates)) for r in batch.requests]
        return self.backend.rank(batch).mean


def adapter(path: Path, *overrides: str) -> Ranker:
    return Ranker(path, *overrides)


def _items(n: int, pool: bool = False) -> list[Item]:
    ds = lookup("dataset", "hatefulmemes")(compose_cfg(["dataset=hatefulmemes"]).dataset, SAMPLE)
    return (ds.demo_pool() if pool else ds.test_items())[:n]


def _uncached(model: Ranker, item: Item, demos: list[Item], candidates: list[str]) -> list[tuple[float, int]]:
    """The reference: the item alone (no padding), one plain forward over its prompt followed by each candidate."""
    prompt = {k: v for k, v in model.prepare([item], [demos]).inputs.items() if k != "labels"}
    n = prompt["input_ids"].shape[1]
    scores = []
    for candidate in candidates:
        ids = model.backend.tokenizer(candidate, add_special_tokens=False)["input_ids"]
        extra = torch.tensor([ids])
        inputs = dict(prompt)
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            # token_type_ids (PaliGemma): the candidate is the causal suffix, as generated tokens are
            if key in inputs:
                inputs[key] = torch.cat([inputs[key], extra if key == "input_ids" else torch.ones_like(extra)], dim=1)
        with torch.inference_mode():
            logprobs = model.backend.model(**inputs).logits[0].double().log_softmax(dim=-1)
        scores.append((float(sum(logprobs[n - 1 + t, tok] for t, tok in enumerate(ids))), len(ids)))
    return scores


def test_cached_batched_ranking_equals_an_uncached_forward_per_candidate_in_padded_batches(checkpoint: Path) -> None:
    model = adapter(checkpoint, "model.rank_chunk=3")  # several chunks of mixed lengths
    items, pool = _items(3), _items(6, pool=True)
    demos = [[], pool[:1], pool[1:4]]  # prompts of three lengths: the batch is padded
    batch = model.prepare(items, demos)
    assert len(set(batch.inputs["attention_mask"].sum(dim=1).tolist())) == 3

    ranked = model.rank(batch, CANDIDATES)

    assert ranked.shape == (3, len(CANDIDATES))
    for i, (item, ds) in enumerate(zip(items, demos)):
        for j, (total, tokens) in enumerate(_uncached(model, item, ds, CANDIDATES)):
            assert ranked[i, j] * tokens == pytest.approx(total, abs=1e-4), (i, CANDIDATES[j])


def test_a_left_padded_batch_ranks_as_the_uncached_forward_too(checkpoint: Path) -> None:
    model = adapter(checkpoint)
    items, pool = _items(2), _items(3, pool=True)
    demos = [pool[:3], []]
    prompts = [model.requests.request(it, ds).prompt for it, ds in zip(items, demos)]
    # the same prompts asked for generation: padded on the left, as the generation path pads
    batch = model.backend.prepare([GenerateRequest(0, prompt, 1, 1, 0.0) for prompt in prompts])
    assert not batch.inputs["attention_mask"][:, 0].all()

    ranked = model.rank(batch, CANDIDATES[:4])

    for i, (item, ds) in enumerate(zip(items, demos)):
        for j, (total, tokens) in enumerate(_uncached(model, item, ds, CANDIDATES[:4])):
            assert ranked[i, j] * tokens == pytest.approx(total, abs=1e-4), (i, CANDIDATES[j])


def test_the_chunk_size_changes_no_score_beyond_rounding(checkpoint: Path) -> None:
    items, pool = _items(2), _items(4, pool=True)
    one, many = adapter(checkpoint, "model.rank_chunk=1"), adapter(checkpoint, "model.rank_chunk=64")
    batch = one.prepare(items, [pool[:2], pool[2:3]])

    a, b = one.rank(batch, CANDIDATES), many.rank(batch, CANDIDATES)

    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a.dtype == np.float64


def test_generation_still_pads_left_and_ranking_pads_right(checkpoint: Path) -> None:
    ranker = adapter(checkpoint)
    items, pool = _items(2), _items(2, pool=True)

    left = Ranker(checkpoint, dataset="vqav2").requests.prepare(items, [[], pool]).inputs["attention_mask"]
    right = ranker.prepare(items, [[], pool]).inputs["attention_mask"]

    assert left[:, -1].all() and not left[:, 0].all()
    assert right[:, 0].all() and not right[:, -1].all()
