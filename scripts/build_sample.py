"""Build evalrunner/sample_data/ from easy-VQA, in the official COCO Karpathy and VQAv2 layouts.

Usage: python scripts/build_sample.py [--out DIR]
Offline and deterministic: the same easy-vqa and Pillow versions give byte-identical files.
"""

import argparse
import importlib.metadata
import json
import random
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import easy_vqa
import sample_classify
import sample_more
from PIL import Image

SEED = 0
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "evalrunner" / "sample_data"
# Karpathy split -> number of images; "test" comes from easy-VQA test, the rest from easy-VQA train.
SPLIT_SIZES = {"train": 400, "restval": 10, "val": 10, "test": 80}
QUESTIONS_PER_IMAGE = 3
# Distinct COCO id ranges keep train and test images apart, as in real COCO.
ID_OFFSET = {"train": 100_000, "test": 500_000}
JPEG_QUALITY = 90
LICENSE_FILE = "LICENSE-easy-VQA.txt"

COLORS = ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow")
SHAPES = ("circle", "rectangle", "triangle")
CAPTION_TEMPLATES = (
    "a {c} {s}",
    "A {c} {s} on a plain background.",
    "a {s} that is {c}",
    "there is a {c} {s} in the image",
    "A single {c} {s}.",
    "a {c} colored {s} on a solid background",
    "An image of a {c} {s}.",
    "a simple drawing of a {c} {s}",
    "The picture shows one {c} {s}.",
    "a {s} in {c} on a light backdrop",
)
# What a careless or wordy annotator says instead; the VQA metric should forgive the first
# kinds (case, punctuation, articles) and not the last (a different answer).
PHRASINGS = {"shape": ("a {a}", "the {a}", "{a} shape"), "color": ("{a} color", "the {a} one"), "yes/no": ("{a}!",)}
CONFUSIONS = {
    "yes": ("no",), "no": ("yes",),
    "rectangle": ("square", "triangle"), "circle": ("oval", "rectangle"), "triangle": ("pyramid", "rectangle"),
    "blue": ("teal", "navy"), "teal": ("blue", "green", "turquoise"), "green": ("teal", "lime"),
    "red": ("brown", "orange"), "brown": ("red", "black"), "gray": ("black", "silver"),
    "black": ("gray", "brown"), "yellow": ("orange", "gold"),
}  # fmt: skip
# The real VQAv2 question types that easy-VQA questions can start with; the longest match wins.
QUESTION_TYPES = (
    "what color is the", "what is the color of the", "what color is", "what color", "what is the",
    "what is", "what", "is there a", "is there", "is", "does the",
)  # fmt: skip


def captions(color: str, shape: str, rng: random.Random) -> list[str]:
    return [t.format(c=color, s=shape) for t in rng.sample(CAPTION_TEMPLATES, 5)]


def human_answers(answer: str, rng: random.Random) -> list[str]:
    """Ten annotators: mostly the easy-VQA answer, some with case, punctuation, wording or a wrong answer."""
    kind = "color" if answer in COLORS else "shape" if answer in SHAPES else "yes/no"
    humans = []
    for _ in range(10):
        r = rng.random()
        if r < 0.04:
            humans.append(answer.capitalize())
        elif r < 0.07:
            humans.append(answer + ".")
        elif r < 0.09:
            humans.append(rng.choice(PHRASINGS[kind]).format(a=answer))
        elif r < 0.12:
            humans.append(rng.choice(CONFUSIONS[answer]))
        else:
            humans.append(answer)
    return humans


def question_type(question: str) -> str:
    words = question.rstrip("?").split()
    matches = [t for t in QUESTION_TYPES if words[: len(t.split())] == t.split()]
    return max(matches, key=len, default="none of the above")


@dataclass(frozen=True)
class Item:
    """One sample image with what easy-VQA says about it."""

    cocoid: int
    split: str  # Karpathy split
    png: str
    color: str
    shape: str
    qas: list[tuple[str, str]]  # (question, answer) pairs chosen for VQAv2

    @property
    def folder(self) -> str:
        # Karpathy val/restval/test images live in val2014, as in the real split.
        return "train2014" if self.split == "train" else "val2014"

    @property
    def filename(self) -> str:
        return f"COCO_{self.folder}_{self.cocoid:012d}.jpg"


def infer_facts(qas: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """The one color and shape an image's questions and answers prove, None where they do not."""
    colors: set[str] = set()
    shapes: set[str] = set()
    for question, answer in qas:
        words = re.findall(r"[a-z]+", question)
        if answer in COLORS:
            colors.add(answer)
        if answer in SHAPES:
            shapes.add(answer)
        negated = "not" in words or "no" in words
        # An open question presupposes what it names ("what is the blue shape?"); a yes/no
        # question proves what it names when its answer and its negation agree.
        if answer not in ("yes", "no") or (answer == "yes") != negated:
            colors.update(w for w in words if w in COLORS)
            shapes.update(w for w in words if w in SHAPES)
    return (min(colors) if len(colors) == 1 else None), (min(shapes) if len(shapes) == 1 else None)


def pick_questions(qas: list[tuple[str, str]], rng: random.Random) -> list[tuple[str, str]]:
    """One open question, one yes/no question and one of either, like VQAv2's mix of types."""
    shuffled = rng.sample(sorted(set(qas)), len(set(qas)))
    open_qs = [qa for qa in shuffled if qa[1] not in ("yes", "no")]
    yes_no = [qa for qa in shuffled if qa[1] in ("yes", "no")]
    chosen = open_qs[:1] + yes_no[:1]
    rest = [qa for qa in shuffled if qa not in chosen]
    return chosen + rest[: QUESTIONS_PER_IMAGE - len(chosen)]


def load_items(rng: random.Random) -> list[Item]:
    sources = [
        ("train", easy_vqa.get_train_questions(), easy_vqa.get_train_image_paths(), ["train", "restval", "val"]),
        ("test", easy_vqa.get_test_questions(), easy_vqa.get_test_image_paths(), ["test"]),
    ]
    items = []
    for source, (texts, answers, image_ids), paths, splits in sources:
        per_image: dict[int, list[tuple[str, str]]] = {}
        for text, answer, image_id in zip(texts, answers, image_ids, strict=True):
            per_image.setdefault(image_id, []).append((text, answer))
        # Only images whose color and shape the questions prove get captions we can trust.
        known = [i for i in sorted(per_image) if None not in infer_facts(per_image[i])]
        chosen = rng.sample(known, sum(SPLIT_SIZES[s] for s in splits))
        split_of = [s for s in splits for _ in range(SPLIT_SIZES[s])]
        for image_id, split in zip(chosen, split_of, strict=True):
            color, shape = infer_facts(per_image[image_id])
            assert color is not None and shape is not None
            qas = pick_questions(per_image[image_id], rng)
            items.append(Item(ID_OFFSET[source] + image_id, split, paths[image_id], color, shape, qas))
    return sorted(items, key=lambda item: (item.folder != "val2014", item.cocoid))


def karpathy(items: list[Item], rng: random.Random) -> dict[str, Any]:
    images = []
    sentid = 0
    for imgid, item in enumerate(items):
        sentences = []
        for raw in captions(item.color, item.shape, rng):
            tokens = re.findall(r"[a-z0-9]+", raw.lower())
            sentences.append({"tokens": tokens, "raw": raw, "imgid": imgid, "sentid": sentid})
            sentid += 1
        images.append(
            {
                "filepath": item.folder,
                "sentids": [s["sentid"] for s in sentences],
                "filename": item.filename,
                "imgid": imgid,
                "split": item.split,
                "sentences": sentences,
                "cocoid": item.cocoid,
            }
        )
    return {"images": images, "dataset": "coco"}


VQA_INFO = {
    "description": "evalrunner sample in the VQA v2.0 layout, derived from easy-VQA 1.0.",
    "url": "https://github.com/vzhou842/easy-VQA",
    "version": "2.0",
    "year": 2019,
    "contributor": "Victor Zhou (easy-VQA); converted by evalrunner",
    "date_created": "2019-12-01 00:00:00",
}
VQA_LICENSE = {"url": "https://opensource.org/licenses/MIT", "name": "MIT License"}


def vqa_annotation(question: str, answer: str, image_id: int, qid: int, rng: random.Random) -> dict[str, Any]:
    humans = human_answers(answer, rng)
    return {
        "question_type": question_type(question),
        "multiple_choice_answer": Counter(humans).most_common(1)[0][0],
        "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i} for i, a in enumerate(humans, 1)],
        "image_id": image_id,
        "answer_type": "yes/no" if answer in ("yes", "no") else "other",
        "question_id": qid,
    }


def vqa_files(items: list[Item], subtype: str, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    questions: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for item in items:
        for k, (question, answer) in enumerate(item.qas):
            qid = item.cocoid * 1000 + k
            questions.append({"image_id": item.cocoid, "question": question.capitalize(), "question_id": qid})
            annotations.append(vqa_annotation(question, answer, item.cocoid, qid, rng))
    head = {"info": VQA_INFO, "task_type": "Open-Ended", "data_type": "mscoco", "license": VQA_LICENSE}
    tail = {"data_subtype": subtype, "annotations": annotations, "data_type": "mscoco"}
    return {**head, "data_subtype": subtype, "questions": questions}, {"info": VQA_INFO, "license": VQA_LICENSE, **tail}


def write_json(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def write_jpeg(png: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(png) as image:
        # Fixed encoder settings: Pillow defaults could change between versions.
        image.convert("RGB").save(path, "JPEG", quality=JPEG_QUALITY, subsampling=2, optimize=False)


README = """# evalrunner sample data

A tiny stand-in for COCO captions (Karpathy split) and VQAv2, in exactly their official layouts, so that
evalrunner runs end to end without downloads. evalrunner reads it when `data_root` is not set. It is
synthetic: scores on it say nothing about a model's quality on the real benchmarks.

## Provenance
Everything here is derived from easy-VQA 1.0 (https://github.com/vzhou842/easy-VQA, the `easy-vqa`
package on PyPI) by Victor Zhou, MIT license (copied in `{license_file}`). easy-VQA has 64x64 PNG
images of one colored shape (circle, rectangle or triangle) and templated questions about it.

What was derived, by `scripts/build_sample.py` (seeded, offline, deterministic):
- images: easy-VQA PNGs re-encoded as JPEG (quality {quality}) under COCO names; easy-VQA train image i
  became COCO id {train_offset} + i, easy-VQA test image j became {test_offset} + j;
- `coco/dataset_coco.json`: 5 captions per image, written from the image's color and shape (as proved by
  its easy-VQA questions and answers) in varied phrasings; Karpathy splits: {splits};
- `vqav2/`: {per_image} easy-VQA questions per image (first letter capitalised) with the easy-VQA answer
  given by 10 simulated annotators, most of whom agree; a seeded few differ in case, punctuation,
  wording or the answer itself; `multiple_choice_answer` is the most frequent of the ten. Train questions
  are those of the Karpathy "train" images, val questions those of the Karpathy "test" images;
  question_id = image_id * 1000 + k. Questions: {train_questions} in train2014, {val_questions} in val2014.

Images (`coco/<filepath>/<filename>`) are in train2014 for Karpathy "train" and in val2014 for "val",
"restval" and "test", as in the real split, and serve both datasets, as in real COCO.

## Rebuild
    python scripts/build_sample.py            # writes evalrunner/sample_data/
    python scripts/build_sample.py --out DIR  # elsewhere

The same easy-vqa and Pillow versions give byte-identical files; `tests/test_sample_data.py` checks it.
"""


def build(out: Path) -> None:
    if out.is_dir() and any(out.iterdir()) and not (out / LICENSE_FILE).is_file():
        raise SystemExit(f"{out} is not empty and not an earlier sample; refusing to write into it")
    for stale in ("coco", "vqav2", *sample_more.NAMES, *sample_classify.NAMES):
        shutil.rmtree(out / stale, ignore_errors=True)
    rng = random.Random(SEED)
    items = load_items(rng)
    for item in items:
        write_jpeg(item.png, out / "coco" / item.folder / item.filename)
    write_json(out / "coco" / "dataset_coco.json", karpathy(items, rng))
    for subtype, split in (("train2014", "train"), ("val2014", "test")):
        qfile, afile = vqa_files([i for i in items if i.split == split], subtype, rng)
        write_json(out / "vqav2" / f"v2_OpenEnded_mscoco_{subtype}_questions.json", qfile)
        write_json(out / "vqav2" / f"v2_mscoco_{subtype}_annotations.json", afile)
    readme = README.format(
        license_file=LICENSE_FILE,
        quality=JPEG_QUALITY,
        train_offset=ID_OFFSET["train"],
        test_offset=ID_OFFSET["test"],
        splits=", ".join(f"{n} {s}" for s, n in SPLIT_SIZES.items()),
        per_image=QUESTIONS_PER_IMAGE,
        train_questions=sum(len(i.qas) for i in items if i.split == "train"),
        val_questions=sum(len(i.qas) for i in items if i.split == "test"),
    )
    sample_more.build(out, items, sample_more.Tools(human_answers, captions, VQA_INFO, VQA_LICENSE, write_json,
                                                    write_jpeg))
    sample_classify.build(out, items, write_jpeg)
    (out / "README.md").write_text(readme + sample_more.readme() + sample_classify.readme(), encoding="utf-8")
    license_text = importlib.metadata.distribution("easy-vqa").read_text("LICENSE")
    assert license_text, "the easy-vqa distribution ships its MIT license; it must travel with the images"
    (out / LICENSE_FILE).write_text(license_text, encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    build(parser.parse_args().out)
