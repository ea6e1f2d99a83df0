"""ImageNet and Hateful Memes loaders: official layouts, names by wnid, image paths from `img`, one-line errors."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import SAMPLE, cli, compose_cfg
from PIL import Image

from evalrunner.datasets.hatefulmemes import HatefulMemes
from evalrunner.datasets.imagenet import STANDARD_NAMES, ImageNet
from evalrunner.errors import UserError


def _imagenet(root: Path, *overrides: str) -> ImageNet:
    return ImageNet(compose_cfg(["dataset=imagenet", *overrides]).dataset, root)


def _hatefulmemes(root: Path, *overrides: str) -> HatefulMemes:
    return HatefulMemes(compose_cfg(["dataset=hatefulmemes", *overrides]).dataset, root)


def _image_folder(root: Path, wnids: list[str], per_class: int = 2) -> None:
    for wnid in wnids:
        (root / wnid).mkdir(parents=True)
        for k in range(per_class):
            Image.new("RGB", (8, 8), (k * 40, 0, 0)).save(root / wnid / f"{wnid}_{k}.JPEG")


def test_the_standard_table_has_the_1000_clip_names_by_sorted_wnid() -> None:
    rows = [line.split("\t") for line in STANDARD_NAMES.read_text(encoding="utf-8").splitlines()]
    wnids = [w for w, _ in rows]

    assert len(rows) == 1000 and wnids == sorted(set(wnids))
    assert rows[0] == ["n01440764", "tench"] and rows[-1] == ["n15075141", "toilet paper"]
    assert dict(rows)["n04008634"] == dict(rows)["n03773504"] == "missile"  # CLIP's list names two classes alike


def test_a_subset_of_class_folders_gets_its_names_by_wnid_not_by_position(tmp_path: Path) -> None:
    root = tmp_path / "imagenet"
    _image_folder(root / "val", ["n01443537", "n04008634", "n15075141"])
    _image_folder(root / "train", ["n01440764", "n01443537"])

    ds = _imagenet(tmp_path)

    assert [it.answer for it in ds.test_items()] == ["goldfish"] * 2 + ["missile"] * 2 + ["toilet paper"] * 2
    assert {it.answer for it in ds.demo_pool()} == {"tench", "goldfish"}
    assert len(ds.candidates) == 998  # all 1,000 names; the two shared names are one candidate each
    assert not {it.image_id for it in ds.test_items()} & {it.image_id for it in ds.demo_pool()}


def test_imagenet_predictions_name_the_image_under_imagenet_and_rank_ties_by_table_order(tmp_path: Path) -> None:
    ds = _imagenet(SAMPLE)
    mean = np.zeros(len(ds.candidates))
    mean[[4, 2]] = [1.0, 1.0]

    top = ds.decide(mean)
    row = ds.record(0, json.dumps(top))

    assert top == [ds.candidates[j] for j in (2, 4, 0, 1, 3)]
    assert row == {"image": "val/n13873502/ILSVRC2012_val_00000003.JPEG", "class": top[0], "top5": top}


def test_a_class_folder_missing_from_the_table_is_a_one_line_error_naming_the_key(tmp_path: Path) -> None:
    _image_folder(tmp_path / "imagenet" / "val", ["n99999999"])
    _image_folder(tmp_path / "imagenet" / "train", ["n01440764"])

    with pytest.raises(UserError, match="dataset.test_dir: 1 class folder.*n99999999.*dataset.class_names"):
        _imagenet(tmp_path)


def test_a_malformed_class_table_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "names.tsv").write_text("n01440764\ttench\nn01443537 goldfish\n")

    with pytest.raises(UserError, match="dataset.class_names: line 2 of .*names.tsv is not 'wnid<TAB>name'"):
        _imagenet(SAMPLE, f"dataset.class_names={tmp_path / 'names.tsv'}")


def test_hatefulmemes_reads_image_paths_from_img_never_from_the_id() -> None:
    ds = _hatefulmemes(SAMPLE)
    padded = [it for it in ds.test_items() + ds.demo_pool() if it.id < 10000]

    assert padded  # the sample has ids below 10000, whose file names are zero-padded
    assert all(Path(it.image_path).name == f"{it.id:05d}.png" and Path(it.image_path).is_file() for it in padded)
    assert {it.answer for it in ds.test_items()} == {"yes", "no"}


def test_hatefulmemes_probability_is_the_softmax_of_the_two_normalised_likelihoods() -> None:
    ds = _hatefulmemes(SAMPLE)

    assert ds.decide(np.array([-2.0, -2.0])) == 0.5
    assert ds.decide(np.array([-3.0, -1.0])) == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-15)
    assert ds.record(5, json.dumps(0.75)) == {"id": 5, "proba": 0.75, "label": 1}


@pytest.fixture
def memes(tmp_path: Path) -> Path:
    shutil.copytree(SAMPLE / "hatefulmemes", tmp_path / "hatefulmemes")
    return tmp_path


@pytest.mark.parametrize("line, message", [
    ('{"id": 1, "img": "img/00001.png", "text": "x"', "line 2 of .* is not JSON"),
    ('{"id": 1, "img": "img/00001.png", "label": 1}', "line 2 of .* lacks 'text'"),
    ('{"id": 1, "img": "img/00001.png", "label": 3, "text": "x"}', r"line 2 of .* lacks 'label \(0 or 1\)'"),
])
def test_a_bad_jsonl_line_is_a_one_line_error_naming_the_file_and_line(memes: Path, line: str, message: str) -> None:
    path = memes / "hatefulmemes" / "train.jsonl"
    path.write_text(path.read_text().splitlines()[0] + "\n" + line + "\n")

    with pytest.raises(UserError, match=f"dataset.demo_file: {message}") as e:
        _hatefulmemes(memes)

    assert "\n" not in str(e.value)


def test_a_test_file_without_labels_is_a_submission_scored_none(memes: Path) -> None:
    path = memes / "hatefulmemes" / "dev_seen.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in rec.items() if k != "label"}) + "\n" for rec in lines))

    ds = _hatefulmemes(memes)

    assert ds.score({it.id: "0.5" for it in ds.test_items()}, ds.test_items()).value is None


def test_a_missing_jsonl_file_stops_the_job_with_one_line_and_writes_nothing(memes: Path) -> None:
    (memes / "hatefulmemes" / "dev_seen.jsonl").unlink()
    run = memes / "run"

    proc = cli(["evalrunner", "dataset=hatefulmemes", f"data_root={memes}", f"hydra.run.dir={run}"], memes)

    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert "dataset.test_file: file not found" in lines[0]
    assert not (run / "predictions.json").exists()
