"""model=openflamingo on a tiny random OpenFlamingo (tests/helpers/tiny_openflamingo.py): prompts, inputs, the
transformers 5 fixes, ranking against the prompt cache, precision, and strict checkpoint loading."""

import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import compose_cfg

pytest.importorskip("open_flamingo.src.flamingo", reason="model=openflamingo: bash scripts/install_openflamingo.sh")
import torch  # noqa: E402
from helpers import tiny_openflamingo  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from evalrunner import demos as demo_sampling  # noqa: E402
from evalrunner import tasks  # noqa: E402
from evalrunner.datasets.base import Item  # noqa: E402
from evalrunner.errors import UserError  # noqa: E402
from evalrunner.models import openflamingo_build  # noqa: E402
from evalrunner.models.openflamingo import OpenFlamingoModel  # noqa: E402
from evalrunner.registry import lookup  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return tiny_openflamingo.build_openflamingo(tmp_path_factory.mktemp("openflamingo"))


class Job:
    """A backend with the job's requester around it, as evalrunner.job builds them."""

    def __init__(self, parts: dict[str, str], dataset: str = "vqav2", *overrides: str) -> None:
        cfg = compose_cfg([f"dataset={dataset}", "protocol=openflamingo", *tiny_openflamingo.overrides(parts),
                           "reuse_model=false", *overrides])
        from evalrunner.datasets import SAMPLE_ROOT

        self.dataset = lookup("dataset", dataset)(cfg.dataset, SAMPLE_ROOT)
        self.backend = OpenFlamingoModel(cfg.model, CPU, 4)
        self.requester = tasks.Requester(self.dataset, self.backend, cfg.dataset)
        self.tokenizer = self.backend.tokenizer

    def prompt(self, item: Item, demos: list[Item]) -> str:
        return self.requester.request(item, demos).prompt.text("<image>")

    def prepare(self, items: list[Item], demos: list[list[Item]]) -> Any:
        return self.requester.prepare(items, demos)

    def generate(self, batch: Any) -> list[str]:
        return self.backend.generate(batch)


@pytest.fixture(scope="module")
def vqa_model(parts: dict[str, str]) -> Job:
    return Job(parts)


def _items(n: int, shots: int) -> tuple[list[Item], list[list[Item]]]:
    cfg = compose_cfg(["dataset=vqav2", "protocol=openflamingo"])
    from evalrunner.datasets import SAMPLE_ROOT

    ds = lookup("dataset", "vqav2")(cfg.dataset, SAMPLE_ROOT)
    items = list(ds.test_items())[:n]
    sampler = demo_sampling.DemoSampler(demo_sampling.query_set(ds.demo_pool(), 64, 42, 0), shots, 42, 0)
    return items, [sampler(it) for it in items]


def test_the_prompt_joins_demos_ending_in_endofchunk_and_a_newline_and_leaves_the_query_answer_open(
    vqa_model: Job,
) -> None:
    demo = Item(1, 1, "/x.jpg", question="What color?", answer="red")
    query = Item(2, 2, "/y.jpg", question="How many?")

    prompt = vqa_model.prompt(query, [demo, demo])

    one = "<image>Question:What color? Short answer:red<|endofchunk|>\n"
    assert prompt == one + one + "<image>Question:How many? Short answer:"


def test_a_text_only_demo_loses_its_image_tag_and_the_query_keeps_its_own(vqa_model: Job) -> None:
    demo = Item(1, 1, "", question="What color?", answer="red")

    prompt = vqa_model.prompt(Item(2, 2, "/y.jpg", question="How many?"), [demo])

    assert prompt == "Question:What color? Short answer:red<|endofchunk|>\n<image>Question:How many? Short answer:"


def test_images_are_stacked_per_item_zero_padded_and_the_text_left_padded(vqa_model: Job) -> None:
    items, demos = _items(2, 2)
    demos[1] = demos[1][:1]

    batch = vqa_model.prepare(items, demos)

    assert batch.vision_x.shape == (2, 3, 1, 3, 32, 32)
    assert batch.vision_x[1, 2].abs().sum() == 0
    assert batch.vision_x[1, 1].abs().sum() > 0
    assert batch.attention_mask[1, 0] == 0 and batch.attention_mask[:, -1].all()
    assert batch.input_ids.dtype == torch.long


def test_an_item_generates_the_same_alone_and_left_padded_in_a_batch(vqa_model: Job) -> None:
    # transformers 5 makes position ids only for a forward that names them; open_flamingo's mixin did not
    items, demos = _items(3, 2)
    demos[0] = demos[0][:1]  # a shorter prompt: padded in the batch

    together = vqa_model.generate(vqa_model.prepare(items, demos))
    alone = [vqa_model.generate(vqa_model.prepare([it], [ds]))[0] for it, ds in zip(items, demos)]

    assert vqa_model.prepare(items, demos).attention_mask[0, 0] == 0
    assert together == alone


def test_generate_gives_the_language_model_position_ids_counted_from_each_rows_first_real_token(
    vqa_model: Job,
) -> None:
    # transformers 5's generate makes them only for a forward that names position_ids; open_flamingo's didn't
    items, demos = _items(2, 2)
    demos[0] = demos[0][:1]
    batch = vqa_model.prepare(items, demos)
    seen: list[torch.Tensor] = []
    lm = vqa_model.backend.built.model.lang_encoder
    hook = lm.register_forward_pre_hook(lambda _m, _a, kw: seen.append(kw.get("position_ids")), with_kwargs=True)
    try:
        vqa_model.generate(batch)
    finally:
        hook.remove()

    pads = int((batch.attention_mask[0] == 0).sum())
    assert pads > 0 and seen[0] is not None
    assert seen[0][0, pads:].tolist() == list(range(batch.input_ids.shape[1] - pads))


def test_the_language_model_runs_a_cached_step_without_an_attention_mask(vqa_model: Job) -> None:
    items, demos = _items(1, 1)
    batch = vqa_model.prepare(items, demos)
    model = vqa_model.backend.built.model
    model.cache_media(input_ids=batch.input_ids, vision_x=batch.vision_x)
    first = model.lang_encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=True)

    step = model.lang_encoder(input_ids=torch.tensor([[5]]), past_key_values=first.past_key_values, use_cache=True)
    model.uncache_media()

    assert step.logits.shape[:2] == (1, 1)


def test_ranking_against_the_prompt_cache_equals_a_plain_forward_within_1e_4(parts: dict[str, str]) -> None:
    job = Job(parts, "imagenet", "model.rank_chunk=2")  # more than one chunk
    items = list(job.dataset.test_items())[:2]
    pool = list(job.dataset.demo_pool())
    demos = [[pool[0]], []]  # prompts of different lengths
    candidates = job.requester.candidates[:3]
    job.requester.candidates = candidates

    scored = job.backend.rank(job.prepare(items, demos))

    model, tok = job.backend.built.model, job.tokenizer
    for i, (it, ds) in enumerate(zip(items, demos)):
        alone = job.prepare([it], [ds])
        for j, c in enumerate(candidates):
            cand = tok(c, add_special_tokens=False, return_tensors="pt")["input_ids"]
            ids = torch.cat([alone.input_ids, cand], dim=1)
            with torch.inference_mode():
                logits = model(alone.vision_x, ids, torch.ones_like(ids).bool()).logits
            logprobs = logits[0, -cand.shape[1] - 1 : -1].log_softmax(-1).gather(1, cand[0, :, None]).mean()
            assert abs(scored.mean[i, j] - float(logprobs)) < 1e-4


def test_an_unknown_precision_is_a_one_line_error_naming_the_key() -> None:
    with pytest.raises(UserError, match=r"model.precision='fp8'.*fp32, bf16, fp16, amp_bf16"):
        openflamingo_build.precision("fp8")


@pytest.mark.parametrize("precision", ["bf16", "amp_bf16"])
def test_bfloat16_precisions_generate_with_integer_token_ids(parts: dict[str, str], precision: str) -> None:
    job = Job(parts, "vqav2", f"model.precision={precision}")
    items, demos = _items(2, 1)

    texts = job.generate(job.prepare(items, demos))

    weights = next(job.backend.built.model.perceiver.parameters()).dtype
    assert weights == (torch.bfloat16 if precision == "bf16" else torch.float32)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def _build(parts: dict[str, str], **changes: str) -> None:
    cfg = OmegaConf.create({**parts, "precision": "fp32", "trust_remote_code": False, **changes})
    openflamingo_build.build(cfg, CPU)


def test_a_checkpoint_missing_a_trained_tensor_is_a_one_line_error_naming_it(parts: dict[str, str],
                                                                               tmp_path: Path) -> None:
    state = torch.load(parts["checkpoint"])
    del state["perceiver.latents"]
    torch.save(state, tmp_path / "checkpoint.pt")

    with pytest.raises(UserError, match=r"model.checkpoint=.*1 trained tensor\(s\) missing, first 'perceiver.latents'"):
        _build(parts, checkpoint=str(tmp_path / "checkpoint.pt"))


def test_a_checkpoint_for_another_layout_is_an_error_naming_a_key_the_model_lacks(parts: dict[str, str]) -> None:
    with pytest.raises(UserError, match=r"key\(s\) the model does not have, first 'lang_encoder.model.layers.0.gated"):
        _build(parts, cross_attn_every_n_layers="2")


def test_a_missing_checkpoint_file_is_an_error_naming_model_checkpoint(parts: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"model.checkpoint=.*nope.pt: no such file"):
        _build(parts, checkpoint=str(tmp_path / "nope.pt"))


def test_an_unknown_vision_encoder_is_an_error_naming_model_vision_encoder(parts: dict[str, str]) -> None:
    with pytest.raises(UserError, match=r"model.vision_encoder='ViT-Nope'"):
        _build(parts, vision_encoder="ViT-Nope")


def test_without_open_flamingo_building_says_how_to_install(parts: dict[str, str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "open_flamingo.src.flamingo", None)

    with pytest.raises(UserError, match=r"bash scripts/install_openflamingo.sh"):
        _build(parts)
