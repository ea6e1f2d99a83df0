from evalrunner.models import hf, nearest  # noqa: F401  (fills the registry)
from evalrunner.models.base import Model, build_model

__all__ = ["Model", "build_model"]
