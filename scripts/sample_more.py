"""The OK-VQA, VizWiz, TextVQA and Flickr30k parts of the sample data, in their official layouts (build_sample.py).

Each is drawn from the easy-VQA images that build_sample.py chose for COCO, with a random.Random of its own, so
adding them changed none of the COCO and VQAv2 files.
"""

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

NAMES = ("okvqa", "vizwiz", "textvqa", "flickr30k")
# easy-VQA "test" images give the evaluated splits, "train" images the demo pools.
SIZES = {"okvqa": {"val2014": 80, "train2014": 160}, "vizwiz": {"val": 40, "test": 20, "train": 120},
         "textvqa": {"val": 40, "test": 20, "train": 120}, "flickr30k": {"test": 40, "val": 5, "train": 120}}
# OK-VQA v1.1 answers are stemmed; these are the only plurals the sample's raw answers use.
PLURALS = {"circle": "circles", "rectangle": "rectangles", "triangle": "triangles", "square": "squares",
           "oval": "ovals", "pyramid": "pyramids"}
UNANSWERABLE_QUESTIONS = ("What brand is this?", "What does the label say?", "What is the expiration date?")


class SampleItem(Protocol):
    cocoid: int
    split: str
    png: str
    color: str
    shape: str
    qas: list[tuple[str, str]]


@dataclass(frozen=True)
class Tools:
    """What build_sample.py lends: its simulated annotators, captions, VQA file headers and writers."""

    humans: Callable[[str, random.Random], list[str]]
    captions: Callable[[str, str, random.Random], list[str]]
    info: dict[str, Any]
    license: dict[str, Any]
    write_json: Callable[[Path, Any], None]
    write_jpeg: Callable[[str, Path], None]


def _pick(items: list[SampleItem], sizes: dict[str, int], rng: random.Random) -> dict[str, list[SampleItem]]:
    """Disjoint images per split: evaluated splits from Karpathy "test" images, the rest from "train"."""
    pools = {"test": [i for i in items if i.split == "test"], "train": [i for i in items if i.split == "train"]}
    chosen: dict[str, list[SampleItem]] = {}
    for source in pools:
        splits = [s for s in sizes if (s in ("train", "train2014")) == (source == "train")]
        drawn = rng.sample(pools[source], sum(sizes[s] for s in splits))
        for s in splits:
            chosen[s], drawn = drawn[: sizes[s]], drawn[sizes[s] :]
    return chosen


def _open_question(item: SampleItem) -> tuple[str, str]:
    return next(((q, a) for q, a in item.qas if a not in ("yes", "no")), item.qas[0])


def okvqa(out: Path, items: list[SampleItem], rng: random.Random, t: Tools) -> None:
    # The images are the COCO sample's own, under coco/, as real OK-VQA uses COCO's.
    for subtype, chosen in _pick(items, SIZES["okvqa"], rng).items():
        questions, annotations = [], []
        for item in sorted(chosen, key=lambda i: i.cocoid):
            question, answer = _open_question(item)
            qid = item.cocoid * 10 + 5
            questions.append({"image_id": item.cocoid, "question": question.capitalize(), "question_id": qid})
            # Five annotators, each answer listed twice, as in v1.1; `answer` is the stemmed `raw_answer`.
            raw = [PLURALS[a] if a in PLURALS and rng.random() < 0.2 else a for a in t.humans(answer, rng)[:5]]
            answers = [{"answer_id": 2 * k + j + 1, "raw_answer": r, "answer_confidence": "yes",
                        "answer": next((s for s, p in PLURALS.items() if p == r), r)}
                       for k, r in enumerate(raw) for j in range(2)]
            annotations.append({"image_id": item.cocoid, "answer_type": "other", "question_type": "other",
                                "question_id": qid, "answers": answers, "confidence": 3})
        head = {"license": t.license, "data_subtype": subtype}
        t.write_json(out / "okvqa" / f"OpenEnded_mscoco_{subtype}_questions.json",
                   {**head, "questions": questions, "task_type": "Open-Ended", "info": t.info, "data_type": "mscoco"})
        t.write_json(out / "okvqa" / f"mscoco_{subtype}_annotations.json",
                   {**head, "annotations": annotations, "info": t.info, "data_type": "mscoco"})


def vizwiz(out: Path, items: list[SampleItem], rng: random.Random, t: Tools) -> None:
    for split, chosen in _pick(items, SIZES["vizwiz"], rng).items():
        entries = []
        for n, item in enumerate(chosen):
            image = f"VizWiz_{split}_{n:08d}.jpg"
            t.write_jpeg(item.png, out / "vizwiz" / split / image)
            question, answer = _open_question(item)
            if rng.random() < 0.15:  # a question the photo cannot answer
                question, answer = rng.choice(UNANSWERABLE_QUESTIONS), "unanswerable"
            entry: dict[str, Any] = {"image": image, "question": question.capitalize()}
            if split != "test":
                given = t.humans(answer, rng) if answer != "unanswerable" else ["unanswerable"] * 9 + ["unsuitable"]
                entry["answers"] = [{"answer": a, "answer_confidence": rng.choice(("yes", "yes", "maybe"))}
                                    for a in given]
                entry["answer_type"] = "unanswerable" if answer == "unanswerable" else "other"
                entry["answerable"] = int(answer != "unanswerable")
            entries.append(entry)
        t.write_json(out / "vizwiz" / "Annotations" / f"{split}.json", entries)


def textvqa(out: Path, items: list[SampleItem], rng: random.Random, t: Tools) -> None:
    qid = 0
    for split, chosen in sorted(_pick(items, SIZES["textvqa"], rng).items(), key=lambda kv: kv[0] != "train"):
        entries = []
        for item in chosen:
            image_id = hashlib.sha256(f"textvqa/{item.cocoid}".encode()).hexdigest()[:16]
            t.write_jpeg(item.png, out / "textvqa" / ("test_images" if split == "test" else "train_images") /
                       f"{image_id}.jpg")
            question, answer = _open_question(item)
            entry: dict[str, Any] = {
                "question": question.lower(), "image_id": image_id, "image_classes": [item.shape.capitalize()],
                "flickr_original_url": "", "flickr_300k_url": "", "image_width": 64, "image_height": 64,
            }
            if split != "test":
                entry["answers"] = t.humans(answer, rng)
            entry.update({"question_tokens": re.findall(r"[a-z0-9]+", question.lower()), "question_id": qid,
                          "set_name": split})
            entries.append(entry)
            qid += 1
        t.write_json(out / "textvqa" / f"TextVQA_0.5.1_{split}.json",
                   {"dataset_type": split, "dataset_name": "textvqa", "dataset_version": "0.5.1", "data": entries})


def flickr30k(out: Path, items: list[SampleItem], rng: random.Random, t: Tools) -> None:
    images, sentid = [], 0
    chosen = _pick(items, SIZES["flickr30k"], rng)
    for split in ("train", "val", "test"):
        for item in chosen[split]:
            filename = f"{10_000_000 + item.cocoid}.jpg"
            t.write_jpeg(item.png, out / "flickr30k" / "flickr30k-images" / filename)
            imgid = len(images)
            sentences = []
            for raw in t.captions(item.color, item.shape, rng):
                sentences.append({"tokens": re.findall(r"[a-z0-9]+", raw.lower()), "raw": raw, "imgid": imgid,
                                  "sentid": sentid})
                sentid += 1
            images.append({"sentids": [s["sentid"] for s in sentences], "imgid": imgid, "sentences": sentences,
                           "split": split, "filename": filename})
    t.write_json(out / "flickr30k" / "dataset_flickr30k.json", {"images": images, "dataset": "flickr30k"})


README = """
## OK-VQA, VizWiz, TextVQA and Flickr30k (`scripts/sample_more.py`)
Drawn from the same easy-VQA images (those of the Karpathy "test" split for the evaluated splits, of "train"
for the demos), one question per image, each dataset with its own seeded generator:
- `okvqa/`: OK-VQA v1.1 files on the COCO sample's own images ({okvqa}); five simulated annotators, each
  answer listed twice, `raw_answer` sometimes plural and `answer` its stem; question_id = image_id * 10 + 5;
- `vizwiz/`: `Annotations/{{train,val,test}}.json` and images `{{train,val,test}}/VizWiz_<split>_<n>.jpg`
  ({vizwiz}); about 15% of the questions ask what the photo cannot show, answered "unanswerable"; test has no
  answers, as the real one;
- `textvqa/`: `TextVQA_0.5.1_{{train,val,test}}.json` ({textvqa}); image ids are 16 hex digits, images in
  `train_images/` (train and val) and `test_images/`; test has no answers;
- `flickr30k/`: `dataset_flickr30k.json` ({flickr30k}) with images `flickr30k-images/<number>.jpg` and five
  captions each, written as for COCO.
"""


def build(out: Path, items: list[SampleItem], tools: Tools) -> None:
    for name, builder in zip(NAMES, (okvqa, vizwiz, textvqa, flickr30k), strict=True):
        builder(out, items, random.Random(f"sample/{name}"), tools)


def readme() -> str:
    return README.format(**{n: ", ".join(f"{k} {v}" for k, v in SIZES[n].items()) for n in NAMES})
