"""The one prompt builder: a test item and its demos, in the form a backend declares, and truncation to its context.

Three forms. Flamingo-style: the dataset's `demo` and `query` templates filled and joined by its `separator`, each
`<image>` becoming an `Image` part (the backend writes its own image token there); a model family trained with every
image ahead of the text (PaliGemma) gets all the `Image` parts first. Chat: a user turn (image, then the question and
the dataset's instruction) and an assistant turn (the answer) per demo, then the query's user turn; the backend applies
its chat template. Bare: the same turns with the question alone, for a backend that reads the examples, not a prompt
(the nearest-demo baseline). A demo shown as text only (image_path "") has no `Image` part in any form.
"""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from evalrunner.datasets.base import Item
from evalrunner.errors import UserError
from evalrunner.requests import GenerateRequest, Image, Part, Prompt, Request, Text, Turn

if TYPE_CHECKING:
    from evalrunner.models.base import Backend

FLAMINGO, CHAT, BARE = "flamingo", "chat", "bare"
IMAGE = "<image>"  # where a dataset's Flamingo-style template shows the image
R = TypeVar("R", bound=Request)


@dataclass(frozen=True)
class PromptStyle:
    """What a backend declares about the prompts it takes."""

    form: str  # FLAMINGO, CHAT or BARE
    image_token: str = IMAGE  # Flamingo-style: the token the backend writes for an image (named in the prompt hash)
    images_first: bool = False  # Flamingo-style: every image ahead of all the text
    template: str = ""  # chat: what names the backend's chat template in the prompt hash (hf: its Jinja text)
    demo_end: str = ""  # Flamingo-style: text after each demo, before the separator (OpenFlamingo: <|endofchunk|>)


@dataclass(frozen=True)
class Template:
    """A dataset's `prompt` block."""

    demo: str
    query: str
    separator: str
    instruction: str

    @classmethod
    def from_cfg(cls, cfg: Any) -> "Template":
        return cls(str(cfg.demo), str(cfg.query), str(cfg.separator), str(cfg.instruction))


class PromptBuilder:
    """(test item, demos) -> Prompt, for one task ("vqa", "caption", "classification"), template and style."""

    def __init__(self, task: str, template: Template, style: PromptStyle) -> None:
        if style.form not in (FLAMINGO, CHAT, BARE):
            raise ValueError(f"prompt form {style.form!r} is not one of {FLAMINGO}, {CHAT}, {BARE}")
        self.task, self.template, self.style = task, template, style

    @property
    def hash(self) -> str | None:
        """What result.json records as prompt_hash: the template text the prompts come from (None for BARE)."""
        t, s = self.template, self.style
        if s.form == CHAT:
            named = [s.template, t.instruction]
        elif s.form == FLAMINGO:
            named = [t.demo, t.query, t.separator, s.image_token] + ["images first"] * s.images_first
            named += [f"demo end {s.demo_end}"] * bool(s.demo_end)  # no change to the hash of a style without one
        else:
            return None
        return hashlib.sha256("\0".join(named).encode()).hexdigest()[:12]

    def __call__(self, item: Item, demos: Sequence[Item]) -> Prompt:
        if self.style.form == FLAMINGO:
            return Prompt(parts=self._flamingo(item, demos))
        turns: list[Turn] = []
        for d in demos:
            turns += [self._user(d), Turn("assistant", (Text(d.answer),))]
        return Prompt(turns=(*turns, self._user(item)))

    def _user(self, item: Item) -> Turn:
        text = item.question
        if self.style.form == CHAT:
            instruction = self.template.instruction
            # a question, or a classification item's own text (a meme's), comes before the instruction
            text = f"{item.question}\n{instruction}" if self.task == "vqa" or item.question else instruction
        image: tuple[Part, ...] = (Image(item.image_path),) if item.image_path else ()
        return Turn("user", (*image, Text(text)))

    def _flamingo(self, item: Item, demos: Sequence[Item]) -> tuple[Part, ...]:
        t, first = self.template, self.style.images_first
        parts: list[Part] = []
        if first:
            parts += [Image(d.image_path) for d in demos if d.image_path] + [Image(item.image_path)]
        for d in demos:
            parts += _fill(t.demo, d, d.answer, show_image=bool(d.image_path) and not first)
            parts += [Text(self.style.demo_end + t.separator)]
        parts += _fill(t.query, item, "", show_image=not first)
        return _merged(parts)


def _fill(template: str, item: Item, answer: str, show_image: bool) -> list[Part]:
    pieces = template.split(IMAGE)
    parts: list[Part] = [Text(pieces[0].format(question=item.question, answer=answer))]
    for piece in pieces[1:]:
        parts += [Image(item.image_path)] * show_image + [Text(piece.format(question=item.question, answer=answer))]
    return parts


def _merged(parts: list[Part]) -> tuple[Part, ...]:
    """Adjacent texts as one, empty ones dropped: the same prompt, in the fewest parts."""
    out: list[Part] = []
    for p in parts:
        if isinstance(p, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].text + p.text)
        elif not (isinstance(p, Text) and not p.text):
            out.append(p)
    return tuple(out)


def fit(items: Sequence[Item], demos: Sequence[Sequence[Item]], build: Callable[[Item, list[Item]], R],
        backend: "Backend") -> Any:
    """The backend's prepared batch of the items' requests, where each prompt too long for the backend's context
    (less the new tokens) has dropped whole demos from the front, the farthest from the query, until it fits."""
    kept = [list(ds) for ds in demos]
    requests = [build(it, ds) for it, ds in zip(items, kept, strict=True)]
    batch = backend.prepare(requests)
    if backend.context_length is None:
        return batch
    limits = [backend.context_length - (r.max_new_tokens if isinstance(r, GenerateRequest) else 0) for r in requests]
    lengths = backend.prompt_lengths(batch)
    if all(n <= limit for n, limit in zip(lengths, limits, strict=True)):
        return batch
    for i, n in enumerate(lengths):
        while n > limits[i]:
            if not kept[i]:
                raise UserError(
                    f"item {items[i].id}: the query alone is {n} tokens, past the {limits[i]} that the "
                    "context length (model.max_length) leaves after max_new_tokens; raise "
                    "model.max_length or shorten the prompt"
                )
            kept[i] = kept[i][1:]
            requests[i] = build(items[i], kept[i])
            n = backend.prompt_lengths(backend.prepare([requests[i]]))[0]
    return backend.prepare(requests)
