"""What a task asks a backend: a prompt of text and images, and either generation settings or candidates to score.

A task builds these (evalrunner/prompts.py); a backend (evalrunner/models/) only executes them. Nothing here imports
torch or transformers, so a backend for a server, or a tool reading requests, needs neither.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Image:
    path: str  # an image file; the backend decodes it


Part = Text | Image


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Prompt:
    """One of two forms. Flamingo-style `parts`: text and images interleaved, each `Image` standing where the backend
    puts its image token. Chat `turns`: user and assistant turns, to which the backend applies its chat template
    (or which it sends as messages). A demo shown as text only has no `Image` part at all."""

    parts: tuple[Part, ...] = ()
    turns: tuple[Turn, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.parts) == bool(self.turns):
            raise ValueError("a Prompt has either parts (Flamingo-style) or turns (chat), not both nor neither")

    @property
    def is_chat(self) -> bool:
        return bool(self.turns)

    @property
    def images(self) -> tuple[str, ...]:
        """The image paths in the order the prompt shows them: the order a backend passes the pixels in."""
        parts = self.parts or tuple(p for turn in self.turns for p in turn.parts)
        return tuple(p.path for p in parts if isinstance(p, Image))

    def text(self, image_token: str) -> str:
        """A Flamingo-style prompt as one string, each image written as `image_token`."""
        if self.is_chat:
            raise ValueError("a chat prompt has no single text: apply a chat template to its turns")
        return "".join(image_token if isinstance(p, Image) else p.text for p in self.parts)


@dataclass(frozen=True)
class GenerateRequest:
    item_id: int
    prompt: Prompt
    max_new_tokens: int
    num_beams: int
    length_penalty: float  # only meaningful to beam search
    stop: tuple[str, ...] = ()  # generation ends at the first of these; the dataset's post-processing cuts it


@dataclass(frozen=True)
class RankRequest:
    item_id: int
    prompt: Prompt
    candidates: tuple[str, ...]  # each scored as the continuation of the prompt


Request = GenerateRequest | RankRequest


@dataclass(frozen=True)
class LogLikelihoods:
    """What a backend's `rank` gives: log P(candidate | prompt) divided by the candidate's number of tokens
    (OpenFlamingo's normalize_length), shape (requests, candidates), float64."""

    mean: np.ndarray
