"""Pure metric functions: predictions and references in, one float out."""

from evalrunner.metrics.cider import cider, cider_scores
from evalrunner.metrics.vqa import vqa_accuracy

__all__ = ["cider", "cider_scores", "vqa_accuracy"]
