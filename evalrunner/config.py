"""The typed schema of a job's config, stored in Hydra's ConfigStore so a wrong type fails at composition."""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class EvalConfig:
    dataset: Any = None  # a conf/dataset/*.yaml
    model: Any = None  # a conf/model/*.yaml
    shots: int = 4  # demos per test item
    trial: int = 0  # trial index; seeds the demos with `seed`
    seed: int = 42  # base seed
    num_samples: int | None = None  # None = whole test split
    query_set_size: int = 2048  # pool that demos are drawn from
    batch_size: int = 8  # items per generation batch, per rank
    num_workers: int = 0  # DataLoader workers per rank
    data_root: str | None = None  # None = bundled sample data
    dist_timeout_s: float = 600.0  # bound on any wait for another rank


ConfigStore.instance().store(name="evalrunner_schema", node=EvalConfig)

# Keys that change how fast a job runs but not what it predicts; a rerun that differs only in these resumes.
RUNTIME_KEYS = ("batch_size", "num_workers", "dist_timeout_s", "model.latency_s")
