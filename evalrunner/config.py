"""The typed schema of a job's config, stored in Hydra's ConfigStore so a wrong type fails at composition.

conf/config.yaml extends `evalrunner_schema`; conf/dataset/<name>.yaml extends `/<name>_dataset_schema@_here_`,
stored outside the dataset group so that `--help` and Hydra's errors never offer a schema as a dataset (a YAML-only
dataset, `format: jsonl`, has its schema applied by its loader instead). Model configs stay open, because a model
of the user's own (`model.name=pkg.module:Class`) brings keys of its own.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from omegaconf import MISSING, DictConfig

from evalrunner.errors import UserError
from evalrunner.folders import RUNTIME_KEYS  # noqa: F401  (re-exported; importing it registers conf/'s resolvers)
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
    name: str = MISSING  # registry name (the class says its task: vqa, caption or classification)
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
class Flickr30k(Dataset):
    karpathy_file: str = MISSING  # dataset_flickr30k.json, relative to data_root or absolute
    image_dir: str = MISSING  # images are <image_dir>/<filename>
    test_split: str = MISSING  # Karpathy split of the test items
    demo_split: str = MISSING  # Karpathy split of the demos
    cider_tokenizer: str = MISSING  # python | java


@dataclass
class VQA(Dataset):
    vqa_variant: str = MISSING  # official | vqa2016 | openflamingo | textvqa
    demo_answer: str = MISSING  # majority | first (OpenFlamingo: the first annotator's answer)


@dataclass
class VQAv2(VQA):
    test_questions: str = MISSING  # relative to data_root or absolute
    test_annotations: str | None = MISSING  # null = a test split without answers: predictions.json is the submission
    demo_questions: str = MISSING
    demo_annotations: str = MISSING
    test_images: str = MISSING  # a pattern with {image_id}
    demo_images: str = MISSING


@dataclass
class VizWiz(VQA):
    test_annotations: str = MISSING  # Annotations/<split>.json; test.json (no answers) makes a submission
    demo_annotations: str = MISSING
    test_image_dir: str = MISSING  # holds the files named by the annotations' "image"
    demo_image_dir: str = MISSING


@dataclass
class TextVQA(VQA):
    test_file: str = MISSING  # TextVQA_0.5.1_<split>.json; the test file (no answers) makes a submission
    demo_file: str = MISSING
    test_image_dir: str = MISSING  # holds <image_id>.jpg
    demo_image_dir: str = MISSING


@dataclass
class Classification:
    """A dataset whose answers are ranked, not generated: no generation settings."""

    name: str = MISSING  # registry name
    prompt: Prompt = field(default_factory=Prompt)
    ensemble_permutations: int | None = None  # rank under min(N, shots!) seeded demo orders, averaged; None = one


@dataclass
class ImageNet(Classification):
    test_dir: str = MISSING  # ImageFolder of the test images, <test_dir>/<wnid>/*.JPEG (relative to data_root)
    demo_dir: str = MISSING  # ImageFolder of the demo images
    class_names: str | None = None  # wnid<TAB>name table; None = test_dir/../class_names.tsv, else the standard 1,000


@dataclass
class HatefulMemes(Classification):
    test_file: str = MISSING  # jsonl of {id, img, label, text}; a file without labels makes a submission
    demo_file: str = MISSING  # jsonl of the demos
    image_dir: str = MISSING  # the folder that each line's `img` path is relative to


@dataclass
class Protocol:
    name: str = MISSING  # official | openflamingo
    zero_shot_text_demos: int = MISSING  # at shots=0, this many demos are shown as text only (OpenFlamingo: 2)


@dataclass
class Rices:
    model: str = MISSING  # CLIP checkpoint (directory or hub id) whose image embeddings rank the demos
    batch_size: int = MISSING  # images per global batch when computing features
    cache_dir: str | None = None  # None = $XDG_CACHE_HOME/evalrunner/rices (~/.cache/evalrunner/rices)
    backend: str = "transformers"  # transformers | open_clip (OpenFlamingo's: open_clip's model and preprocessing)
    pretrained: str | None = None  # open_clip: the pretrained tag or weights file, e.g. openai
    import_features: str | None = None  # the demo pool's features from OpenFlamingo's cache_rices_features.py


@dataclass
class EvalConfig:
    dataset: Any = MISSING  # a conf/dataset/*.yaml
    protocol: Protocol = field(default_factory=Protocol)  # a conf/protocol/*.yaml
    model: Any = MISSING  # a conf/model/*.yaml
    shots: int = MISSING  # demos per test item
    trial: int = MISSING  # trial index; seeds the demos with `seed`
    seed: int = MISSING  # base seed
    num_samples: int | None = None  # None = whole test split
    query_set_size: int = MISSING  # pool that demos are drawn from
    batch_size: int = MISSING  # items per batch, cut from the whole test set and dealt to the ranks
    num_workers: int = MISSING  # DataLoader workers per rank
    data_root: str | None = None  # None = bundled sample data
    index_dir: str | None = None  # None = $XDG_CACHE_HOME/evalrunner/index: the datasets' parsed, memory-mapped items
    dist_timeout_s: float = MISSING  # bound on any wait for another rank
    demo_selection: str = MISSING  # random | rices | class_conditional
    num_classes_in_demos: int | None = None  # class_conditional: the true class plus N-1 others
    rices: Rices = field(default_factory=Rices)  # settings of demo_selection=rices
    reuse_model: bool = True  # a job reuses the weights loaded by this process's previous job (speed only)
    tracking: Any = None  # a conf/tracking/*.yaml: where runs are logged (evalrunner/tracking/); not in results


# Bounds the schema's types cannot say: (key, lowest allowed value, what the key means).
_BOUNDS = (("shots", 0, "demos per test item"), ("trial", 0, "the trial index"), ("batch_size", 1, "items per batch"),
           ("num_workers", 0, "DataLoader workers per rank"), ("num_samples", 1, "test items"),
           ("query_set_size", 1, "the demo pool's size"), ("model.latency_s", 0, "seconds added per batch"),
           ("rices.batch_size", 1, "images per batch"))


def validate(cfg: DictConfig) -> None:
    """Refuse a value out of its key's range before any work, in one line naming the key."""
    for key, lowest, meaning in _BOUNDS:
        *parents, leaf = key.split(".")
        node: Any = cfg
        for p in parents:
            node = node.get(p) if isinstance(node, DictConfig) else None
        value = node.get(leaf) if isinstance(node, DictConfig) and leaf in node else None
        if isinstance(value, int | float) and not isinstance(value, bool) and value < lowest:
            raise UserError(f"{key}={value}: {meaning} must be at least {lowest}")
    if cfg.get("dist_timeout_s") is not None and cfg.dist_timeout_s <= 0:
        raise UserError(f"dist_timeout_s={cfg.dist_timeout_s}: use a positive number of seconds")


# Hydra instantiates launchers only from the hydra_plugins namespace, and an editable install hides that package
# from its plugin scan, so ours are registered by hand.
Plugins.instance().register(SlurmLauncher)
Plugins.instance().register(LocalLauncher)

_store = ConfigStore.instance()
_store.store(name="evalrunner_schema", node=EvalConfig)
# Not in group "dataset": Hydra lists a group's every option in --help and in its errors.
_store.store(name="coco_dataset_schema", node=Coco)
_store.store(name="vqav2_dataset_schema", node=VQAv2)
_store.store(name="vizwiz_dataset_schema", node=VizWiz)
_store.store(name="textvqa_dataset_schema", node=TextVQA)
_store.store(name="flickr30k_dataset_schema", node=Flickr30k)
_store.store(name="imagenet_dataset_schema", node=ImageNet)
_store.store(name="hatefulmemes_dataset_schema", node=HatefulMemes)
