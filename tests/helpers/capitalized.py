"""A test-only model whose answers differ from the humans' in case alone, so VQA variants score it differently."""

from typing import Any

from evalrunner.models.nearest import NearestDemo


class Capitalized(NearestDemo):
    def generate(self, batch: Any) -> list[str]:
        return [text.capitalize() for text in super().generate(batch)]
