"""Expected mistakes: a non-zero exit, one line naming the file or key, no traceback, nothing overwritten."""

import json
import shutil
import sys
from pathlib import Path

import pytest
from helpers import SAMPLE, cli, compose_cfg, one_line_error
from helpers.nltk_resources import nltk_data  # noqa: F401  (fixture)

from evalrunner.datasets import build
from evalrunner.errors import UserError
from evalrunner.images import open_rgb


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(SAMPLE, root)
    return root


def test_a_missing_file_names_the_config_key_and_the_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    proc = cli(["evalrunner", f"data_root={tmp_path / 'empty'}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    one_line_error(proc, "dataset.karpathy_file", "dataset_coco.json", "not found")


def test_a_missing_data_root_names_data_root(tmp_path: Path) -> None:
    proc = cli(["evalrunner", f"data_root={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    one_line_error(proc, "data_root", "nowhere")


def test_malformed_json_names_the_file(data: Path, tmp_path: Path) -> None:
    (data / "coco" / "dataset_coco.json").write_text('{"images": [')

    proc = cli(["evalrunner", f"data_root={data}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    one_line_error(proc, "malformed JSON", "dataset_coco.json")


def test_an_annotation_file_of_the_wrong_kind_names_the_key(data: Path, tmp_path: Path) -> None:
    questions = "vqav2/v2_OpenEnded_mscoco_val2014_questions.json"

    proc = cli(["evalrunner", "dataset=vqav2", f"data_root={data}", f"dataset.test_annotations={questions}",
                f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    one_line_error(proc, "dataset.test_annotations", "not a VQA annotations file")


def test_a_missing_image_is_found_before_generation(data: Path, tmp_path: Path) -> None:
    next((data / "coco" / "val2014").glob("*.jpg")).unlink()

    proc = cli(["evalrunner", f"data_root={data}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    one_line_error(proc, "image(s) not found")
    assert not (tmp_path / "run" / "partial" / "rank0.jsonl").exists()


def test_more_shots_than_the_query_set_names_shots(tmp_path: Path) -> None:
    proc = cli(["evalrunner", "shots=32", "query_set_size=16", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    one_line_error(proc, "shots=32", "query_set_size")


def test_an_unknown_model_name_lists_the_known_ones(tmp_path: Path) -> None:
    proc = cli(["evalrunner", "model.name=gpt9", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    one_line_error(proc, "model.name='gpt9'", "nearest")


def test_a_rerun_with_another_config_in_the_same_dir_overwrites_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = cli(["evalrunner", "dataset=vqav2", "shots=2", "num_samples=10", f"hydra.run.dir={run}"], tmp_path)
    assert first.returncode == 0
    before = {p: p.read_bytes() for p in (run / "result.json", run / "predictions.json")}

    proc = cli(["evalrunner", "dataset=vqav2", "shots=4", "num_samples=10", f"hydra.run.dir={run}"], tmp_path)

    one_line_error(proc, str(run), "different config")
    assert {p: p.read_bytes() for p in before} == before


def test_the_collector_on_an_empty_sweep_dir_says_so(tmp_path: Path) -> None:
    proc = cli(["evalrunner.collect", str(tmp_path)], tmp_path, launcher=(sys.executable, "-m"))

    one_line_error(proc, str(tmp_path), "no jobs")
    assert not (tmp_path / "results.json").exists()


def test_the_collector_on_a_missing_dir_says_so(tmp_path: Path) -> None:
    proc = cli(["evalrunner.collect", str(tmp_path / "nope")], tmp_path)

    one_line_error(proc, "nope", "not a directory")


def _build(name: str, root: Path, *overrides: str):  # type: ignore[no-untyped-def]
    return build(compose_cfg([f"dataset={name}", *overrides]).dataset, root)


def _edit_json(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _first_twice(entries: list) -> None:  # type: ignore[type-arg]
    """The id of the first entry (of the test split, for a Karpathy file) given to the second as well."""
    a, b = [e for e in entries if e.get("split", "test") == "test"][:2]
    b.update({k: a[k] for k in ("question_id", "cocoid") if k in a})


@pytest.mark.parametrize(("name", "file", "change", "needle"), [
    ("vqav2", "vqav2/v2_OpenEnded_mscoco_val2014_questions.json", lambda d: _first_twice(d["questions"]),
     "has the question_id"),
    ("vqav2", "vqav2/v2_mscoco_train2014_annotations.json", lambda d: _first_twice(d["annotations"]),
     "has the question_id"),
    ("coco", "coco/dataset_coco.json", lambda d: _first_twice(d["images"]), "has the image id"),
])
def test_a_duplicated_id_in_a_test_split_or_demo_pool_is_one_line_naming_the_file_and_the_id(
        data: Path, name: str, file: str, change, needle: str) -> None:  # type: ignore[no-untyped-def]
    _edit_json(data / file, change)

    with pytest.raises(UserError, match=f"{Path(file).name} {needle} \\d+ twice") as e:
        _build(name, data)

    assert "\n" not in str(e.value)


def test_a_duplicated_meme_id_in_the_demo_pool_names_the_file_and_the_id(data: Path) -> None:
    path = data / "hatefulmemes" / "train.jsonl"
    first = path.read_text().splitlines()[0]
    path.write_text(path.read_text() + first + "\n")

    with pytest.raises(UserError, match=f"train.jsonl has the id {json.loads(first)['id']} twice"):
        _build("hatefulmemes", data)


def test_captions_without_references_are_refused_before_generation(data: Path) -> None:
    def empty(doc: dict) -> None:  # type: ignore[type-arg]
        next(img for img in doc["images"] if img["split"] == "test")["sentences"] = []

    _edit_json(data / "coco" / "dataset_coco.json", empty)

    with pytest.raises(UserError, match="dataset.karpathy_file: image entry \\d+ of .* has no sentences"):
        _build("coco", data)


def test_an_empty_test_split_is_an_error_not_a_submission(data: Path, tmp_path: Path) -> None:
    _edit_json(data / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json", lambda d: d.update(questions=[]))

    proc = cli(["evalrunner", "dataset=vqav2", f"data_root={data}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    one_line_error(proc, "dataset.test_questions", "has no test items")
    assert not (tmp_path / "run" / "predictions.json").exists()


@pytest.mark.usefixtures("nltk_data")
@pytest.mark.parametrize(("name", "file", "field"), [
    ("vqav2", "vqav2/v2_OpenEnded_mscoco_val2014_questions.json", "questions"),
    ("okvqa", "okvqa/OpenEnded_mscoco_val2014_questions.json", "questions"),
    ("textvqa", "textvqa/TextVQA_0.5.1_val.json", "data"),
])
def test_a_non_numeric_question_id_is_one_line_naming_the_file(data: Path, name: str, file: str, field: str) -> None:
    _edit_json(data / file, lambda d: d[field][2].update(question_id="q-3"))

    with pytest.raises(UserError, match=f"entry 2 of .*{Path(file).name} is malformed .*an integer id") as e:
        _build(name, data)

    assert "\n" not in str(e.value)


def test_non_utf8_bytes_in_a_jsonl_file_name_the_file_and_line(data: Path) -> None:
    path = data / "hatefulmemes" / "dev_seen.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"text": "', b'"text": "\xff\xfe')
    path.write_bytes(b"".join(lines))

    with pytest.raises(UserError, match="dataset.test_file: line 3 of .*dev_seen.jsonl is not UTF-8"):
        _build("hatefulmemes", data)


def test_non_utf8_bytes_in_a_class_name_table_name_the_file_and_line(data: Path) -> None:
    table = data / "imagenet" / "class_names.tsv"
    table.write_bytes(b"n01440764\ttench\nn01443537\tgold\xe9fish\n")

    with pytest.raises(UserError, match="dataset.class_names: line 2 of .*class_names.tsv is not UTF-8"):
        _build("imagenet", data, f"dataset.class_names={table}")


def test_a_truncated_image_is_one_line_naming_the_file(data: Path, tmp_path: Path) -> None:
    image = Path(_build("coco", data).test_items()[0].image_path)
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])

    proc = cli(["evalrunner", f"data_root={data}", "num_workers=0", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"image {image} cannot be decoded" in proc.stderr


def test_open_rgb_names_an_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "not-an-image.jpg"
    path.write_bytes(b"GIF89a" + bytes(10))

    with pytest.raises(UserError, match=f"image {path} cannot be decoded"):
        open_rgb(str(path))


def test_the_schema_names_are_offered_neither_in_help_nor_in_errors(tmp_path: Path) -> None:
    helped = cli(["evalrunner", "--help"], tmp_path)
    unknown = cli(["evalrunner", "dataset=nope", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    groups = next(line for line in helped.stdout.splitlines() if line.startswith("dataset: "))
    assert "vqav2" in groups and "_schema" not in groups
    assert "vqav2" in unknown.stderr and "_schema" not in unknown.stderr


def test_a_task_on_the_command_line_cannot_disagree_with_the_dataset() -> None:
    with pytest.raises(Exception, match="task"):
        compose_cfg(["dataset=vqav2", "dataset.task=caption"])

    assert _build("vqav2", SAMPLE).task == "vqa"
