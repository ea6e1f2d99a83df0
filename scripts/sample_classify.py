"""The ImageNet and Hateful Memes parts of the sample data, in their official layouts (build_sample.py).

ImageNet: the easy-VQA shapes as three classes of an ImageFolder, named by their WordNet 3.0 noun ids (as ImageNet's
wnids are), with a class-name table that also lists shapes no image shows. Hateful Memes: easy-VQA's yes/no
questions as the memes' texts, "yes" as hateful. Each draws with a random.Random of its own, so adding them changed
none of the other files.
"""

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from sample_more import SampleItem

NAMES = ("imagenet", "hatefulmemes")
# easy-VQA "test" images give the evaluated splits, "train" images the demo pools.
SIZES = {"imagenet": {"val": 30, "train": 60}, "hatefulmemes": {"dev_seen": 40, "train": 80}}
# WordNet 3.0 noun offsets (/usr/share/wordnet/data.noun); the first three are easy-VQA's shapes.
WNIDS = {"circle": "n13873502", "rectangle": "n13883346", "triangle": "n13879320", "ellipse": "n13878306",
         "pentagon": "n13882201", "hexagon": "n13882276", "crescent": "n13896217", "star": "n13881644",
         "square": "n13878634"}


def _draw(items: list[SampleItem], sizes: dict[str, int], rng: random.Random) -> dict[str, list[SampleItem]]:
    test = [i for i in items if i.split == "test"]
    train = [i for i in items if i.split == "train"]
    evaluated, demos = sizes
    return {evaluated: rng.sample(test, sizes[evaluated]), demos: rng.sample(train, sizes[demos])}


def imagenet(out: Path, items: list[SampleItem], rng: random.Random, write_jpeg: Callable[[str, Path], None]) -> None:
    root = out / "imagenet"
    drawn = _draw(items, SIZES["imagenet"], rng)
    for number, item in enumerate(sorted(drawn["val"], key=lambda i: i.cocoid), 1):
        write_jpeg(item.png, root / "val" / WNIDS[item.shape] / f"ILSVRC2012_val_{number:08d}.JPEG")
    for item in sorted(drawn["train"], key=lambda i: i.cocoid):
        wnid = WNIDS[item.shape]
        write_jpeg(item.png, root / "train" / wnid / f"{wnid}_{item.cocoid}.JPEG")
    (root / "class_names.tsv").write_text("".join(f"{w}\t{n}\n" for n, w in WNIDS.items()), encoding="utf-8")


def _yes_no(item: SampleItem, rng: random.Random) -> tuple[str, str]:
    return rng.choice([(q, a) for q, a in item.qas if a in ("yes", "no")])


def hatefulmemes(out: Path, items: list[SampleItem], rng: random.Random) -> None:
    root = out / "hatefulmemes"
    drawn = _draw(items, SIZES["hatefulmemes"], rng)
    # Five-digit ids as in the challenge, many below 10000: their file names are zero-padded (img/01235.png).
    ids = iter(rng.sample(range(1000, 100000), sum(SIZES["hatefulmemes"].values())))
    (root / "img").mkdir(parents=True, exist_ok=True)
    for split, chosen in drawn.items():
        lines = []
        for item in chosen:
            meme = next(ids)
            question, answer = _yes_no(item, rng)
            img = f"img/{meme:05d}.png"
            shutil.copyfile(item.png, root / img)
            lines.append(json.dumps({"id": meme, "img": img, "label": int(answer == "yes"), "text": question}) + "\n")
        (root / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")


README = """
- `imagenet/`: an ImageFolder, `val/<wnid>/ILSVRC2012_val_<n>.JPEG` ({imagenet}) and `train/<wnid>/`, with easy-VQA's
  three shapes as classes named by WordNet 3.0 noun ids; `class_names.tsv` maps them, and six shapes no image
  shows, to names (the real benchmark uses the standard 1,000 names instead);
- `hatefulmemes/`: `train.jsonl` and `dev_seen.jsonl` ({hatefulmemes}), lines `{{id, img, label, text}}`: an
  easy-VQA yes/no question as the text, label 1 for "yes"; the easy-VQA PNGs as `img/<id, 5 digits>.png`.
"""


def build(out: Path, items: list[SampleItem], write_jpeg: Callable[[str, Path], None]) -> None:
    imagenet(out, items, random.Random("sample/imagenet"), write_jpeg)
    hatefulmemes(out, items, random.Random("sample/hatefulmemes"))


def readme() -> str:
    return README.format(**{n: ", ".join(f"{k} {v}" for k, v in SIZES[n].items()) for n in NAMES})
