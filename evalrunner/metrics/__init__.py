"""Pure metric functions: predictions and references in, one float out."""

from evalrunner.metrics.cider import cider
from evalrunner.metrics.vqa import vqa_accuracy

__all__ = ["cider", "vqa_accuracy"]
