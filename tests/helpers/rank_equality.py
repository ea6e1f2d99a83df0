"""Run as a script in a process of its own (vLLM pins its compute threads): hf's and vLLM's mean log-likelihoods of
a ranking dataset's candidates for a few 1-shot prompts on one checkpoint, printed as one JSON line.

Usage: python tests/helpers/rank_equality.py CHECKPOINT DATASET [vLLM overrides...]
"""

import json
import sys

import numpy as np
import torch

from evalrunner.datasets import index
from evalrunner.models.base import build_model
from evalrunner.registry import lookup
from evalrunner.tasks import Requester
from helpers import SAMPLE, compose_cfg


def scores(model: str, checkpoint: str, dataset: str, extra: list[str]) -> np.ndarray:
    cfg = compose_cfg([f"dataset={dataset}", "shots=1", f"model={model}", f"model.path={checkpoint}", *extra])
    data = lookup("dataset", dataset)(cfg.dataset, SAMPLE, index.folder(None))
    items = data.test_items()
    queries, demos = items[:3], [[items[5]], [items[6]], []]  # a text-and-image demo, and none
    backend = build_model(cfg.model, torch.device("cpu"), max_images=2)
    requester = Requester(data, backend, cfg.dataset)
    return np.asarray(backend.rank(requester.prepare(list(queries), demos)).mean)


if __name__ == "__main__":
    checkpoint, dataset, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
    hf, vllm = scores("hf", checkpoint, dataset, []), scores("vllm", checkpoint, dataset, overrides)
    print(json.dumps({"shape": list(hf.shape), "max_abs_diff": float(np.abs(hf - vllm).max()),
                      "hf": hf.tolist(), "vllm": vllm.tolist()}))
