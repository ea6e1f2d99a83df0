from evalrunner.models import hf, nearest, reuse  # noqa: F401  (hf and nearest fill the registry)
from evalrunner.models.base import Model, build_model

__all__ = ["Model", "build_model", "reuse"]
