"""Any OpenAI-compatible chat-completions server (`model=openai`): one chat completion per test item, many in flight.

Prompts are chat turns (evalrunner/prompts.py), sent as messages: each demo a user turn (its image as a data URL,
then the question and the dataset's instruction) and an assistant turn (its answer), the test item the last user
turn. A server that applies the checkpoint's template to them (vLLM's does) sees hf's prompt token for token.
The key is read from the environment variable named by `model.api_key_env` and kept nowhere else.
"""

import asyncio
import base64
import io
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import torch
from omegaconf import DictConfig
from PIL import Image

from evalrunner.errors import UserError
from evalrunner.models.base import Backend
from evalrunner.prompts import CHAT, PromptStyle
from evalrunner.registry import register
from evalrunner.requests import GenerateRequest, Request, Text

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def data_url(path: str) -> str:
    """The image file's own bytes, not re-encoded, so the server decodes the pixels hf decodes."""
    with Image.open(path) as img:
        kind = img.format or "PNG"
    if kind not in _MIME:  # e.g. BMP or TIFF, which servers need not accept: sent as lossless PNG
        buf = io.BytesIO()
        with Image.open(path) as img:
            img.convert("RGB").save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    with open(path, "rb") as f:
        return f"data:{_MIME[kind]};base64," + base64.b64encode(f.read()).decode()


def retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header given in seconds (the HTTP-date form is treated as absent)."""
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _message(e: Any) -> str:
    body = getattr(e, "body", None)
    text = body.get("message") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        text = body["error"].get("message", text)
    text = str(text or getattr(e, "message", "") or type(e).__name__).strip()
    return text.splitlines()[0] if text else type(e).__name__


@register("model", "openai")
class OpenAIModel(Backend):
    batch_invariant = True  # every item is a request of its own

    def __init__(self, cfg: DictConfig, device: torch.device, max_images: int) -> None:
        try:
            import openai  # noqa: F401
        except ImportError:
            raise UserError("model=openai needs the openai client: pip install -e '.[openai]'") from None
        self.base_url = str(cfg.base_url)
        self.served = str(cfg.model)
        # The server applies its own template: the prompt hash names the served model in its place.
        self.prompt_style = PromptStyle(CHAT, template=f"served:{self.served}")
        self.key_env = str(cfg.api_key_env)
        self.concurrency, self.max_retries = max(1, int(cfg.concurrency)), max(0, int(cfg.max_retries))
        self.timeout_s, self.seed = float(cfg.timeout_s), cfg.seed
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0}
        self.reported: dict[str, set[str]] = {"model": set(), "system_fingerprint": set()}

    @property
    def engine(self) -> dict[str, Any]:
        """What result.json records: the server's own account of itself and the tokens this run used."""
        return {"name": "openai", "base_url": self.base_url, "served_model": sorted(self.reported["model"]),
                "system_fingerprint": sorted(self.reported["system_fingerprint"]), "usage": dict(self.usage)}

    def prepare(self, requests: Sequence[Request]) -> list[tuple[GenerateRequest, list[dict[str, Any]]]]:
        batch = []
        for r in requests:
            if not isinstance(r, GenerateRequest):
                raise TypeError("model=openai only generates")
            if r.num_beams > 1:
                raise UserError(f"model=openai: dataset.generation.num_beams={r.num_beams}, but chat completion "
                                "APIs have no beam search; set dataset.generation.num_beams=1")
            messages = [{"role": turn.role, "content": [
                {"type": "text", "text": p.text} if isinstance(p, Text)
                else {"type": "image_url", "image_url": {"url": data_url(p.path)}} for p in turn.parts]}
                for turn in r.prompt.turns]
            batch.append((r, messages))
        return batch

    def generate(self, batch: list[tuple[GenerateRequest, list[dict[str, Any]]]]) -> list[str]:
        return asyncio.run(self._all(batch))

    async def _all(self, batch: list[tuple[GenerateRequest, list[dict[str, Any]]]]) -> list[str]:
        import openai

        key = os.environ.get(self.key_env) or "EMPTY"  # a local server started without --api-key takes any
        gate = asyncio.Semaphore(self.concurrency)
        async with openai.AsyncOpenAI(base_url=self.base_url, api_key=key, max_retries=0,
                                      timeout=self.timeout_s) as client:

            async def one(request: GenerateRequest, messages: list[dict[str, Any]]) -> str:
                async with gate:
                    return await self._complete(openai, client, request, messages)

            return list(await asyncio.gather(*(one(r, m) for r, m in batch)))

    async def _complete(self, openai: Any, client: Any, request: GenerateRequest,
                        messages: list[dict[str, Any]]) -> str:
        start = time.monotonic()
        for attempt in range(self.max_retries + 1):
            try:
                reply = await client.chat.completions.create(
                    model=self.served, messages=messages, max_tokens=request.max_new_tokens, temperature=0.0,
                    seed=None if self.seed is None else int(self.seed), stop=list(request.stop) or None)
                self._record(reply)
                return (reply.choices[0].message.content or "").strip()
            except openai.APIStatusError as e:
                if e.status_code != 429 and e.status_code < 500:
                    raise UserError(f"model=openai: {self.base_url} answered {e.status_code}: {_message(e)}") from None
                wait, failure = retry_after(e.response.headers), f"it answered {e.status_code}: {_message(e)}"
            except openai.APIConnectionError as e:  # refused, reset or timed out (APITimeoutError is one)
                wait, failure = None, f"no answer ({type(e).__name__})"
            if attempt == self.max_retries:
                break
            # Exponential backoff with full jitter, so that many clients do not retry in step; Retry-After wins.
            await asyncio.sleep(wait if wait is not None else random.uniform(0, min(self.timeout_s, 0.5 * 2**attempt)))
        raise UserError(f"model=openai: {self.base_url}: {failure} after {self.max_retries + 1} tries in "
                        f"{time.monotonic() - start:.0f} s; is the server up at model.base_url?")

    def _record(self, reply: Any) -> None:
        self.usage["requests"] += 1
        if reply.usage is not None:
            self.usage["prompt_tokens"] += int(reply.usage.prompt_tokens or 0)
            self.usage["completion_tokens"] += int(reply.usage.completion_tokens or 0)
        for key in self.reported:
            value = getattr(reply, key, None)
            if value:
                self.reported[key].add(str(value))
