"""evalrunner: few-shot evaluation of vision-language models, from a laptop to a SLURM cluster."""

from evalrunner.job import run
from evalrunner.metrics import cider, vqa_accuracy

__all__ = ["cider", "run", "vqa_accuracy"]
