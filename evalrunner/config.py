"""The typed schema of a job's config, stored in Hydra's ConfigStore so a wrong type fails at composition.

conf/config.yaml extends `evalrunner_schema`; conf/dataset/<name>.yaml extends `<name>_schema`. Model configs stay
open, because a model of the user's own (`model.name=pkg.module:Class`) brings keys of its own.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from omegaconf import MISSING

from hydra_plugins.evalrunner_launcher.launcher import LocalLauncher, SlurmLauncher


@dataclass
class Generation:
    max_new_tokens: int = MISSING  # new tokens per item
    num_beams: int = MISSING  # 1 = greedy
    length_penalty: float = MISSING  # exponent on length in beam scores; 0 = none


@dataclass
class Prompt:
    demo: str = MISSING  # Flamingo-style demo, with {question} and {answer}
    query: str = MISSING  # the same for the test item, answer slot left open
    separator: str = MISSING  # between demos and the query
    instruction: str = MISSING  # the user turn, for models with a chat template


@dataclass
class Dataset:
    name: str = MISSING  # registry name
    task: str = MISSING  # vqa | caption
    generation: Generation = field(default_factory=Generation)
    prompt: Prompt = field(default_factory=Prompt)


@dataclass
class Coco(Dataset):
    karpathy_file: str = MISSING  # dataset_coco.json, relative to data_root or absolute
    image_dir: str = MISSING  # images are <image_dir>/<filepath>/<filename>
    test_split: str = MISSING  # Karpathy split of the test items
    demo_split: str = MISSING  # Karpathy split of the demos
    cider_tokenizer: str = MISSING  # python | java


@dataclass
class VQAv2(Dataset):
    test_questions: str = MISSING  # relative to data_root or absolute
    test_annotations: str = MISSING
    demo_questions: str = MISSING
    demo_annotations: str = MISSING
    test_images: str = MISSING  # a pattern with {image_id}
    demo_images: str = MISSING
    vqa_variant: str = MISSING  # official | vqa2016 | openflamingo


@dataclass
class EvalConfig:
    dataset: Any = MISSING  # a conf/dataset/*.yaml
    model: Any = MISSING  # a conf/model/*.yaml
    shots: int = MISSING  # demos per test item
    trial: int = MISSING  # trial index; seeds the demos with `seed`
    seed: int = MISSING  # base seed
    num_samples: int | None = None  # None = whole test split
    query_set_size: int = MISSING  # pool that demos are drawn from
    batch_size: int = MISSING  # items per generation batch, per rank
    num_workers: int = MISSING  # DataLoader workers per rank
    data_root: str | None = None  # None = bundled sample data
    dist_timeout_s: float = MISSING  # bound on any wait for another rank


# Hydra instantiates launchers only from the hydra_plugins namespace, and an editable install hides that package
# from its plugin scan, so ours are registered by hand.
Plugins.instance().register(SlurmLauncher)
Plugins.instance().register(LocalLauncher)

_store = ConfigStore.instance()
_store.store(name="evalrunner_schema", node=EvalConfig)
_store.store(group="dataset", name="coco_schema", node=Coco)
_store.store(group="dataset", name="vqav2_schema", node=VQAv2)

# Keys that change how fast a job runs but not what it predicts; a rerun that differs only in these resumes.
RUNTIME_KEYS = ("batch_size", "num_workers", "dist_timeout_s", "model.latency_s")
