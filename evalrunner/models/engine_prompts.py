"""A checkpoint's prompt rendering as `model=hf` does it, without its weights: what a serving engine is given.

It borrows hf's own code (its chat-template choice and its render), so the two backends cannot drift apart on the
same checkpoint: the prompt text, and so its token ids, are hf's.
"""

from typing import Any

from omegaconf import DictConfig

from evalrunner.models.hf import _IMAGES_FIRST, HFModel
from evalrunner.prompts import CHAT, FLAMINGO, PromptStyle
from evalrunner.requests import Prompt


class HFRenderer:
    def __init__(self, path: str, cfg: DictConfig) -> None:
        import transformers

        self.processor = transformers.AutoProcessor.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
        self.tokenizer = self.processor.tokenizer
        self.image_token = str(getattr(self.processor, "image_token", None) or "<image>")
        self.chat_template: str | None = HFModel._pick_chat_template(self, cfg.chat_template)  # type: ignore[arg-type]
        if self.chat_template is not None:
            self.prompt_style = PromptStyle(CHAT, template=self.chat_template)
        else:
            self.prompt_style = PromptStyle(FLAMINGO, image_token=self.image_token,
                                            images_first=type(self.processor).__name__ in _IMAGES_FIRST)

    def render(self, prompt: Prompt) -> str:
        """The prompt's text with one image placeholder per image, in image order, exactly as hf renders it."""
        text: str = HFModel.render(self, prompt)  # type: ignore[arg-type]
        return text

    def length(self, text: str, images: list[Any]) -> int:
        """The prompt's token count once the processor has expanded its image placeholders."""
        encoded = self.processor(text=[text], images=[images] if images else None)
        return len(encoded["input_ids"][0])
