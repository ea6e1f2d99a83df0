"""What a job asks of a backend, by task kind: the one place that maps a dataset's `task` to generate or rank.

`Requester` turns each test item and its demos into a request (its prompt from evalrunner/prompts.py) and has the
backend prepare a batch of them; `predictor` turns a prepared batch into one prediction string per item. Strings
keep one mechanism for partial files, the gather and resume; a kind whose predictions are structured encodes them
as JSON.
"""

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evalrunner import prompts
from evalrunner.datasets.base import Dataset, Item
from evalrunner.models.base import Backend
from evalrunner.requests import GenerateRequest, RankRequest, Request
from evalrunner.tasks import generate, rank

Predict = Callable[[list[Item], Any], list[str]]
KINDS = {"vqa": "generate", "caption": "generate", "classification": "rank"}  # dataset.task -> what the model does
_PREDICTORS = {"generate": generate.predictor, "rank": rank.predictor}


def kind(dataset: Dataset) -> str:
    if dataset.task not in KINDS:
        raise ValueError(f"dataset task {dataset.task!r} is not one of {sorted(KINDS)}")
    return KINDS[dataset.task]


class Requester:
    """The requests of one job's items for its backend: built in DataLoader workers, so it holds no dataset."""

    def __init__(self, dataset: Dataset, backend: Backend, dataset_cfg: DictConfig) -> None:
        self.backend = backend
        self.kind = kind(dataset)
        self.prompt = prompts.PromptBuilder(dataset.task, prompts.Template.from_cfg(dataset_cfg.prompt),
                                            backend.prompt_style)
        self.prompt_hash = self.prompt.hash
        self.candidates: tuple[str, ...] = tuple(dataset.candidates) if self.kind == "rank" else ()
        self.generation = None if self.kind == "rank" else dataset_cfg.generation
        # The job orders its test set by sort_key when there is one.
        self.sort_key: Callable[[Item, list[Item]], int] | None = self._sort_key if backend.sorts else None

    def request(self, item: Item, demos: list[Item]) -> Request:
        prompt = self.prompt(item, demos)
        settings = self.generation
        if settings is None:
            return RankRequest(item.id, prompt, self.candidates)
        stop = OmegaConf.select(settings, "stop", default=None) or ()
        return GenerateRequest(item.id, prompt, int(settings.max_new_tokens), int(settings.num_beams),
                               float(settings.length_penalty), tuple(map(str, stop)))

    def prepare(self, items: list[Item], demos: list[list[Item]]) -> Any:
        return prompts.fit(items, demos, self.request, self.backend)

    def _sort_key(self, item: Item, demos: list[Item]) -> int:
        return self.backend.sort_key(self.request(item, demos))


def predictor(dataset: Dataset, backend: Backend, model_name: str) -> Predict:
    return _PREDICTORS[kind(dataset)](dataset, backend, model_name)
