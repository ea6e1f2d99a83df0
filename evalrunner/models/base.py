"""What a backend is: it declares the prompts it takes, and executes requests. Prompts are built elsewhere.

The job builds each test item's request (evalrunner/tasks/, evalrunner/prompts.py) in the form the backend's
`prompt_style` names; the backend turns a batch of them into model inputs (`prepare`) and answers them (`generate`
or `rank`). A new backend is one module with one subclass, registered under its `model.name`, and one YAML file.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import DictConfig

from evalrunner.errors import UserError
from evalrunner.prompts import PromptStyle
from evalrunner.requests import LogLikelihoods, Request

if TYPE_CHECKING:
    import torch

__all__ = ["Backend", "LogLikelihoods", "build_model"]


class Backend(ABC):
    """Built as `cls(cfg, device, max_images)` from the registry name in `model.name`: `cfg` is the `model` config
    group, `max_images` the most images one prompt of this job holds (the shots and the query).

    `prepare` does the CPU work (decoding images, preprocessing, tokenizing) and runs in DataLoader workers, so it
    must only use what survives a fork. Every request of one batch is of one kind, with the same settings.
    """

    # Whether an item's output is independent of the other items of its batch; if not, batch_size is part of the
    # job's config, so a rerun never mixes two batchings.
    batch_invariant: ClassVar[bool] = False
    ranks: ClassVar[bool] = False  # it implements rank() (classification datasets)
    sorts: ClassVar[bool] = False  # it implements sort_key(): the job orders the test set by it to cut padding
    prompt_style: PromptStyle  # set by the constructor: it may depend on the checkpoint (its chat template)
    # Prompt plus new tokens, in the units of prompt_lengths(); None: prompts are never cut to fit.
    context_length: int | None = None
    # Consecutive ranks that run one engine together (vLLM's tensor parallelism under torchrun): each group of them
    # is dealt the same batches, and every group makes the same number of calls, as the engines step in lockstep.
    ranks_per_engine: int = 1

    @abstractmethod
    def __init__(self, cfg: DictConfig, device: "torch.device", max_images: int) -> None: ...

    @abstractmethod
    def prepare(self, requests: Sequence[Request]) -> Any:
        """The requests as this backend's model inputs (what generate or rank take)."""

    def prompt_lengths(self, batch: Any) -> list[int]:
        """Each prepared prompt's length, to hold against context_length (needed when that is not None)."""
        raise NotImplementedError(f"{type(self).__name__} sets context_length but has no prompt_lengths")

    def generate(self, batch: Any) -> list[str]:
        """One raw text per request, in order; the dataset post-processes it."""
        raise UserError(f"model {type(self).__name__} cannot generate text")

    def rank(self, batch: Any) -> LogLikelihoods:
        """Each request's candidates scored as continuations of its prompt (when `ranks`)."""
        raise NotImplementedError(f"{type(self).__name__} does not rank")

    def sort_key(self, request: Request) -> int:
        """A cheap measure of the request's prompt (when `sorts`): items of similar keys are batched together."""
        raise NotImplementedError(f"{type(self).__name__} does not sort")


def build_model(model_cfg: DictConfig, device: "torch.device", max_images: int) -> Backend:
    from evalrunner.registry import lookup

    backend: Backend = lookup("model", model_cfg.name)(model_cfg, device, max_images)
    return backend
