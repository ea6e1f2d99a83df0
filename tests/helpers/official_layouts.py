"""Small files in the official layouts of OK-VQA, VizWiz, TextVQA, Flickr30k and VQAv2 test-dev, for data_root.

The human answers are full of the spellings the VQA conventions treat differently (case, punctuation, "'s",
number words), so a score that agrees with a reference implementation here is not agreement by luck.
"""

import json
import random
from pathlib import Path
from typing import Any

from PIL import Image

QUESTIONS = ("What is written on the can?", "What color is the car?", "How many dogs are there?",
             "Is it raining?", "What brand is this?")
ANSWERS = {
    QUESTIONS[0]: ["Coca-Cola", "coca cola", "coca-cola's", "COCA COLA", "pepsi"],
    QUESTIONS[1]: ["red", "Red.", "the red one", "dark red", "it's red"],
    QUESTIONS[2]: ["2", "two", "Two", "3", "2 dogs"],
    QUESTIONS[3]: ["yes", "Yes", "yes!", "no", "unanswerable"],
    QUESTIONS[4]: ["unanswerable", "Unanswerable", "nike", "n/a", "unsuitable"],
}


def _image(path: Path, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), tuple(rng.randrange(256) for _ in range(3))).save(path, "JPEG")


def _write(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def _qa(rng: random.Random) -> tuple[str, list[str]]:
    question = rng.choice(QUESTIONS)
    pool = rng.sample(ANSWERS[question], 3)
    return question, [rng.choice(pool) for _ in range(10)]


def build(root: Path, seed: int = 0, per_split: dict[str, int] | None = None) -> Path:
    rng = random.Random(seed)
    sizes = per_split or {"test": 30, "train": 40}
    for subtype, n, offset in (("val2014", sizes["test"], 1000), ("train2014", sizes["train"], 5000),
                               ("test2015", sizes["test"], 9000)):
        questions, annotations = [], []
        for image_id in range(offset, offset + n):
            _image(root / "coco" / subtype / f"COCO_{subtype}_{image_id:012d}.jpg", rng)
            question, humans = _qa(rng)
            qid = image_id * 10 + 1
            questions.append({"image_id": image_id, "question": question, "question_id": qid})
            answers = [{"answer_id": i + 1, "raw_answer": h, "answer_confidence": "yes", "answer": h.lower()}
                       for i, h in enumerate(humans)]
            annotations.append({"image_id": image_id, "answer_type": "other", "question_type": "other",
                                "question_id": qid, "answers": answers, "confidence": 3})
        if subtype == "test2015":  # VQAv2 test-dev: questions only, answers stay on the challenge server
            _write(root / "vqav2" / "v2_OpenEnded_mscoco_test-dev2015_questions.json", {"questions": questions})
            continue
        _write(root / "okvqa" / f"OpenEnded_mscoco_{subtype}_questions.json", {"questions": questions})
        _write(root / "okvqa" / f"mscoco_{subtype}_annotations.json", {"annotations": annotations})
        vqav2 = [{**a, "multiple_choice_answer": a["answers"][0]["raw_answer"],
                  "answers": [{k: v for k, v in x.items() if k != "raw_answer"} for x in a["answers"]]}
                 for a in annotations]
        _write(root / "vqav2" / f"v2_OpenEnded_mscoco_{subtype}_questions.json", {"questions": questions})
        _write(root / "vqav2" / f"v2_mscoco_{subtype}_annotations.json", {"annotations": vqav2})

    qid = 0
    for split in ("train", "val", "test"):
        n = sizes["train"] if split == "train" else sizes["test"]
        vizwiz, textvqa = [], []
        for k in range(n):
            image = f"VizWiz_{split}_{k:08d}.jpg"
            _image(root / "vizwiz" / split / image, rng)
            question, humans = _qa(rng)
            entry: dict[str, Any] = {"image": image, "question": question}
            if split != "test":
                entry.update(answers=[{"answer": h, "answer_confidence": "yes"} for h in humans],
                             answer_type="other", answerable=int(humans.count("unanswerable") < 5))
            vizwiz.append(entry)
            image_id = f"{rng.getrandbits(64):016x}"
            _image(root / "textvqa" / ("test_images" if split == "test" else "train_images") / f"{image_id}.jpg", rng)
            question, humans = _qa(rng)
            record: dict[str, Any] = {"question": question, "image_id": image_id, "question_id": qid,
                                      "set_name": split}
            if split != "test":
                record["answers"] = humans
            textvqa.append(record)
            qid += 1
        _write(root / "vizwiz" / "Annotations" / f"{split}.json", vizwiz)
        _write(root / "textvqa" / f"TextVQA_0.5.1_{split}.json",
               {"dataset_type": split, "dataset_name": "textvqa", "dataset_version": "0.5.1", "data": textvqa})

    images = []
    for imgid, split in enumerate(["train"] * sizes["train"] + ["val"] * 3 + ["test"] * sizes["test"]):
        filename = f"{1000092795 + 7 * imgid}.jpg"
        _image(root / "flickr30k" / "flickr30k-images" / filename, rng)
        raws = [rng.choice(["A man in a red shirt.", "two dogs play in the grass", "A girl, smiling!",
                            "people walking down a street", "a dog runs"]) for _ in range(5)]
        images.append({"sentids": list(range(5 * imgid, 5 * imgid + 5)), "imgid": imgid, "split": split,
                       "filename": filename, "sentences": [{"tokens": r.lower().split(), "raw": r, "imgid": imgid,
                                                            "sentid": 5 * imgid + j} for j, r in enumerate(raws)]})
    _write(root / "flickr30k" / "dataset_flickr30k.json", {"images": images, "dataset": "flickr30k"})
    return root
