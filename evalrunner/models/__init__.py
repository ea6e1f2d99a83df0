from evalrunner.models import hf, nearest, reuse  # noqa: F401  (hf and nearest fill the registry)
from evalrunner.models.base import Backend, build_model

__all__ = ["Backend", "build_model", "reuse"]
