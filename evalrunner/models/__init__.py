from evalrunner.models import hf, nearest, openai, reuse, vllm  # noqa: F401  (they fill the registry)
from evalrunner.models.base import Backend, build_model

__all__ = ["Backend", "build_model", "reuse"]
