"""The one prompt builder: its three forms, text-only demos, images first, truncation and the prompt hash."""

import dataclasses
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import SAMPLE, compose_cfg

from evalrunner import prompts, tasks
from evalrunner.datasets.base import Item
from evalrunner.errors import UserError
from evalrunner.models.base import Backend
from evalrunner.models.nearest import NearestDemo
from evalrunner.prompts import BARE, CHAT, FLAMINGO, PromptBuilder, PromptStyle, Template
from evalrunner.registry import lookup
from evalrunner.requests import GenerateRequest, Image, Prompt, RankRequest, Request, Text, Turn

VQA = Template(demo="<image>Q:{question} A:{answer}", query="<image>Q:{question} A:", separator="\n",
               instruction="Answer briefly.")
DEMOS = [Item(1, 1, "a.jpg", "What colour?", "red"), Item(2, 2, "", "How many?", "two")]  # the second: text only
QUERY = Item(9, 9, "q.jpg", "Which shape?")


def test_a_flamingo_prompt_puts_an_image_part_where_each_template_shows_one_and_none_for_a_text_only_demo() -> None:
    build = PromptBuilder("vqa", VQA, PromptStyle(FLAMINGO))

    prompt = build(QUERY, DEMOS)

    assert prompt.parts == (Image("a.jpg"), Text("Q:What colour? A:red\nQ:How many? A:two\n"), Image("q.jpg"),
                            Text("Q:Which shape? A:"))
    assert prompt.images == ("a.jpg", "q.jpg")
    assert prompt.text("<img>") == "<img>Q:What colour? A:red\nQ:How many? A:two\n<img>Q:Which shape? A:"


def test_images_first_puts_every_image_ahead_of_all_the_text() -> None:
    build = PromptBuilder("vqa", VQA, PromptStyle(FLAMINGO, images_first=True))

    prompt = build(QUERY, DEMOS)

    assert prompt.parts == (Image("a.jpg"), Image("q.jpg"),
                            Text("Q:What colour? A:red\nQ:How many? A:two\nQ:Which shape? A:"))


def test_a_chat_prompt_alternates_user_and_assistant_turns_and_ends_with_the_query() -> None:
    build = PromptBuilder("vqa", VQA, PromptStyle(CHAT, template="jinja"))

    prompt = build(QUERY, DEMOS)

    assert prompt.turns == (
        Turn("user", (Image("a.jpg"), Text("What colour?\nAnswer briefly."))), Turn("assistant", (Text("red"),)),
        Turn("user", (Text("How many?\nAnswer briefly."),)), Turn("assistant", (Text("two"),)),
        Turn("user", (Image("q.jpg"), Text("Which shape?\nAnswer briefly."))),
    )
    assert prompt.images == ("a.jpg", "q.jpg")


def test_a_caption_chat_turn_holds_the_image_and_the_instruction_alone() -> None:
    build = PromptBuilder("caption", VQA, PromptStyle(CHAT))

    prompt = build(Item(3, 3, "c.jpg"), [])

    assert prompt.turns == (Turn("user", (Image("c.jpg"), Text("Answer briefly."))),)


def test_a_bare_prompt_holds_each_question_without_the_instruction() -> None:
    build = PromptBuilder("vqa", VQA, PromptStyle(BARE))

    prompt = build(QUERY, DEMOS[:1])

    assert prompt.turns == (Turn("user", (Image("a.jpg"), Text("What colour?"))), Turn("assistant", (Text("red"),)),
                            Turn("user", (Image("q.jpg"), Text("Which shape?"))))
    assert build.hash is None


def test_the_prompt_hash_names_the_templates_the_form_reads_and_nothing_else() -> None:
    flamingo = PromptBuilder("vqa", VQA, PromptStyle(FLAMINGO)).hash
    other_instruction = Template(VQA.demo, VQA.query, VQA.separator, "Say it.")

    assert PromptBuilder("vqa", other_instruction, PromptStyle(FLAMINGO)).hash == flamingo
    assert PromptBuilder("vqa", other_instruction, PromptStyle(CHAT)).hash != PromptBuilder(
        "vqa", VQA, PromptStyle(CHAT)).hash
    assert PromptBuilder("vqa", VQA, PromptStyle(FLAMINGO, image_token="<i>")).hash != flamingo
    assert PromptBuilder("vqa", VQA, PromptStyle(FLAMINGO, images_first=True)).hash != flamingo
    assert flamingo is not None and len(flamingo) == 12


def test_a_prompt_has_exactly_one_form() -> None:
    with pytest.raises(ValueError, match="either parts"):
        Prompt()
    with pytest.raises(ValueError, match="either parts"):
        Prompt(parts=(Text("a"),), turns=(Turn("user", (Text("b"),)),))
    with pytest.raises(ValueError, match="no single text"):
        Prompt(turns=(Turn("user", (Text("b"),)),)).text("<image>")


class CountingParts(Backend):
    """A backend whose prompt length is its number of parts plus its words."""

    prompt_style = PromptStyle(FLAMINGO)

    def __init__(self, cfg: Any = None, device: Any = None, max_images: int = 1, context: int = 0) -> None:
        self.context_length = context
        self.prepared: list[int] = []

    def prepare(self, requests: Sequence[Request]) -> list[Request]:
        self.prepared.append(len(requests))
        return list(requests)

    def prompt_lengths(self, batch: list[Request]) -> list[int]:
        return [sum(len(p.text.split()) if isinstance(p, Text) else 1 for p in r.prompt.parts) for r in batch]


def _generate(item: Item, demos: list[Item]) -> GenerateRequest:
    return GenerateRequest(item.id, PromptBuilder("vqa", VQA, PromptStyle(FLAMINGO))(item, demos), 3, 1, 0.0)


def test_fitting_drops_whole_demos_from_the_front_until_the_prompt_and_new_tokens_fit() -> None:
    demos = [Item(k, k, f"{k}.jpg", "q", "a") for k in range(1, 5)]  # each 2 words and an image: 3
    backend = CountingParts(context=4 + 2 * 3 + 3)  # the query (3 words and an image), two demos, 3 new tokens

    batch = prompts.fit([QUERY, QUERY], [demos, demos[:1]], _generate, backend)

    assert [r.prompt.images for r in batch] == [("3.jpg", "4.jpg", "q.jpg"), ("1.jpg", "q.jpg")]
    assert backend.prepared == [2, 1, 1, 2]  # the batch, the long item twice, the batch that fits


def test_a_batch_that_fits_is_prepared_once() -> None:
    backend = CountingParts(context=100)

    prompts.fit([QUERY], [DEMOS], _generate, backend)

    assert backend.prepared == [1]


def test_a_query_alone_past_the_context_is_a_one_line_error_naming_model_max_length() -> None:
    backend = CountingParts(context=3 + 3)  # the query's 4 and the 3 new tokens do not fit

    with pytest.raises(UserError, match=r"item 9: the query alone is 4 tokens, past the 3 .*model\.max_length") as e:
        prompts.fit([QUERY], [DEMOS], _generate, backend)

    assert "\n" not in str(e.value)


def test_ranking_keeps_no_room_for_new_tokens() -> None:
    def rank(item: Item, demos: list[Item]) -> RankRequest:
        return RankRequest(item.id, PromptBuilder("vqa", VQA, PromptStyle(FLAMINGO))(item, demos), ("yes",))

    batch = prompts.fit([QUERY], [[]], rank, CountingParts(context=4))

    assert batch[0].prompt.images == ("q.jpg",)


def test_the_task_kind_comes_from_the_dataset_class_not_the_config() -> None:
    cfg = compose_cfg(["dataset=hatefulmemes", "++dataset.task=vqa"])  # a stray key must not make it generate
    dataset = lookup("dataset", "hatefulmemes")(cfg.dataset, SAMPLE)

    requests = tasks.Requester(dataset, CountingParts(), cfg.dataset)

    assert tasks.kind(dataset) == "rank"
    assert isinstance(requests.request(dataset.test_items()[0], []), RankRequest)
    assert requests.request(dataset.test_items()[0], []).candidates == ("no", "yes")
    assert requests.sort_key is None  # the backend does not sort


def test_the_request_types_import_neither_torch_nor_transformers() -> None:
    path = Path(__file__).parents[1] / "evalrunner" / "requests.py"
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('requests_alone', "
            f"{str(path)!r}); spec.loader.exec_module(importlib.util.module_from_spec(spec)); "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "[]"


NEAREST = json.loads((Path(__file__).parent / "refdata" / "nearest_identity.json").read_text())["cases"]


@pytest.mark.parametrize("case", NEAREST, ids=lambda c: f"{c['dataset']}-{c['shots']}{'-text' * c['text_only']}")
def test_the_nearest_baseline_predicts_what_it_did_before_requests(case: dict[str, Any]) -> None:
    cfg = compose_cfg([f"dataset={case['dataset']}", "model=nearest"])
    dataset = lookup("dataset", case["dataset"])(cfg.dataset, SAMPLE)
    items, pool = list(dataset.test_items()[:12]), list(dataset.demo_pool())
    demos = [[pool[(5 * i + k) % len(pool)] for k in range(case["shots"])] for i in range(len(items))]
    if case["text_only"]:
        demos = [[dataclasses.replace(d, image_path="") for d in shown] for shown in demos]
    backend = NearestDemo(cfg.model, torch.device("cpu"), case["shots"] + 1)
    batch = tasks.Requester(dataset, backend, cfg.dataset).prepare(items, demos)

    predictions = tasks.predictor(dataset, backend, "nearest")(items, batch)

    assert predictions == case["predictions"]
