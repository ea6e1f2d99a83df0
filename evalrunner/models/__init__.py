from evalrunner.models import hf, nearest, openflamingo, reuse  # noqa: F401  (they fill the registry)
from evalrunner.models.base import Backend, build_model

__all__ = ["Backend", "build_model", "reuse"]
