"""The bundled sample data is in the official COCO Karpathy and VQAv2 layouts, and rebuilds byte for byte."""

import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "evalrunner" / "sample_data"
SUBTYPES = ("train2014", "val2014")


def load(relative: str) -> Any:
    return json.loads((SAMPLE / relative).read_text(encoding="utf-8"))


def questions(subtype: str) -> dict[str, Any]:
    return load(f"vqav2/v2_OpenEnded_mscoco_{subtype}_questions.json")


def annotations(subtype: str) -> dict[str, Any]:
    return load(f"vqav2/v2_mscoco_{subtype}_annotations.json")


def karpathy_images() -> list[dict[str, Any]]:
    return load("coco/dataset_coco.json")["images"]


def test_karpathy_file_has_every_split_with_its_images_in_the_matching_folder() -> None:
    images = karpathy_images()

    folders = {(image["split"], image["filepath"]) for image in images}

    assert folders == {("train", "train2014"), ("restval", "val2014"), ("val", "val2014"), ("test", "val2014")}
    assert Counter(image["split"] for image in images)["test"] == 80


def test_every_karpathy_image_exists_under_its_coco_name() -> None:
    images = karpathy_images()

    missing = [i["filename"] for i in images if not (SAMPLE / "coco" / i["filepath"] / i["filename"]).is_file()]

    assert missing == []
    assert all(i["filename"] == f"COCO_{i['filepath']}_{i['cocoid']:012d}.jpg" for i in images)
    assert len({i["cocoid"] for i in images}) == len(images)


def test_karpathy_entries_have_five_tokenized_sentences_with_consistent_ids() -> None:
    images = karpathy_images()

    sentids = [s["sentid"] for image in images for s in image["sentences"]]

    assert [image["imgid"] for image in images] == list(range(len(images)))
    assert len(sentids) == len(set(sentids)) == 5 * len(images)
    for image in images:
        assert list(image) == ["filepath", "sentids", "filename", "imgid", "split", "sentences", "cocoid"]
        assert image["sentids"] == [s["sentid"] for s in image["sentences"]]
        for sentence in image["sentences"]:
            assert list(sentence) == ["tokens", "raw", "imgid", "sentid"]
            assert sentence["imgid"] == image["imgid"]
            assert sentence["tokens"] and all(t == t.lower() and t.isalnum() for t in sentence["tokens"])


@pytest.mark.parametrize("subtype", SUBTYPES)
def test_vqa_files_have_the_official_top_level_keys(subtype: str) -> None:
    qfile, afile = questions(subtype), annotations(subtype)

    assert list(qfile) == ["info", "task_type", "data_type", "license", "data_subtype", "questions"]
    assert list(afile) == ["info", "license", "data_subtype", "annotations", "data_type"]
    assert (qfile["task_type"], qfile["data_type"], afile["data_type"]) == ("Open-Ended", "mscoco", "mscoco")
    assert qfile["data_subtype"] == afile["data_subtype"] == subtype


def test_question_ids_are_unique_across_files_and_follow_the_vqav2_convention() -> None:
    all_questions = [q for subtype in SUBTYPES for q in questions(subtype)["questions"]]

    ids = [q["question_id"] for q in all_questions]

    assert len(ids) == len(set(ids))
    assert all(q["question_id"] // 1000 == q["image_id"] for q in all_questions)
    assert all(list(q) == ["image_id", "question", "question_id"] for q in all_questions)


@pytest.mark.parametrize("subtype", SUBTYPES)
def test_every_question_has_exactly_one_annotation_with_ten_answers(subtype: str) -> None:
    qs, anns = questions(subtype)["questions"], annotations(subtype)["annotations"]

    by_id = {a["question_id"]: a for a in anns}

    assert len(by_id) == len(anns) == len(qs)
    assert all(by_id[q["question_id"]]["image_id"] == q["image_id"] for q in qs)
    for a in anns:
        assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
        assert all(list(x) == ["answer", "answer_confidence", "answer_id"] for x in a["answers"])
        assert a["answer_type"] in ("yes/no", "number", "other")
        assert a["multiple_choice_answer"] == Counter(x["answer"] for x in a["answers"]).most_common(1)[0][0]


def test_human_answers_sometimes_disagree_so_the_vqa_metric_has_work_to_do() -> None:
    anns = annotations("val2014")["annotations"]

    distinct = [len({x["answer"] for x in a["answers"]}) for a in anns]

    assert 0 < distinct.count(1) < len(anns)


@pytest.mark.parametrize(("subtype", "split"), [("train2014", "train"), ("val2014", "test")])
def test_vqa_questions_cover_exactly_the_karpathy_images_of_the_matching_split(subtype: str, split: str) -> None:
    image_ids = {q["image_id"] for q in questions(subtype)["questions"]}

    karpathy_ids = {i["cocoid"] for i in karpathy_images() if i["split"] == split}

    assert image_ids == karpathy_ids
    assert all((SAMPLE / "coco" / subtype / f"COCO_{subtype}_{i:012d}.jpg").is_file() for i in image_ids)


def test_sample_folder_stays_small() -> None:
    size = sum(f.stat().st_size for f in SAMPLE.rglob("*") if f.is_file())
    per_dataset = {d.name: sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) for d in SAMPLE.iterdir()}

    assert size < 4_000_000
    assert max(v for k, v in per_dataset.items() if k not in ("coco", "vqav2")) < 400_000


def test_rebuilding_the_sample_gives_identical_bytes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "build_sample.py"), "--out", str(tmp_path)], check=True)

    built = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    committed = {p.relative_to(SAMPLE): p.read_bytes() for p in SAMPLE.rglob("*") if p.is_file()}

    assert sorted(built) == sorted(committed)
    assert [p for p in built if p.suffix != ".jpg" and built[p] != committed[p]] == []
    # JPEG bytes depend on the Pillow/libjpeg release that encodes them; the pixels must still agree.
    differing = [p for p in built if p.suffix == ".jpg" and not _same_pixels(built[p], committed[p])]
    assert differing == []


def _same_pixels(a: bytes, b: bytes) -> bool:
    if a == b:
        return True
    pa, pb = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB"), dtype=np.int16) for x in (a, b))
    return pa.shape == pb.shape and float(np.abs(pa - pb).mean()) < 2.0
