"""Expected mistakes: a non-zero exit, one line naming the file or key, no traceback, nothing overwritten."""

import shutil
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE, cli


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(SAMPLE, root)
    return root


def _one_line_error(proc, *needles: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_a_missing_file_names_the_config_key_and_the_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    proc = cli(["evalrunner", f"data_root={tmp_path / 'empty'}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    _one_line_error(proc, "dataset.karpathy_file", "dataset_coco.json", "not found")


def test_a_missing_data_root_names_data_root(tmp_path: Path) -> None:
    proc = cli(["evalrunner", f"data_root={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    _one_line_error(proc, "data_root", "nowhere")


def test_malformed_json_names_the_file(data: Path, tmp_path: Path) -> None:
    (data / "coco" / "dataset_coco.json").write_text('{"images": [')

    proc = cli(["evalrunner", f"data_root={data}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    _one_line_error(proc, "malformed JSON", "dataset_coco.json")


def test_an_annotation_file_of_the_wrong_kind_names_the_key(data: Path, tmp_path: Path) -> None:
    questions = "vqav2/v2_OpenEnded_mscoco_val2014_questions.json"

    proc = cli(["evalrunner", "dataset=vqav2", f"data_root={data}", f"dataset.test_annotations={questions}",
                f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    _one_line_error(proc, "dataset.test_annotations", "not a VQA annotations file")


def test_a_missing_image_is_found_before_generation(data: Path, tmp_path: Path) -> None:
    next((data / "coco" / "val2014").glob("*.jpg")).unlink()

    proc = cli(["evalrunner", f"data_root={data}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    _one_line_error(proc, "image(s) not found")
    assert not (tmp_path / "run" / "partial" / "rank0.jsonl").exists()


def test_more_shots_than_the_query_set_names_shots(tmp_path: Path) -> None:
    proc = cli(["evalrunner", "shots=32", "query_set_size=16", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    _one_line_error(proc, "shots=32", "query_set_size")


def test_an_unknown_model_name_lists_the_known_ones(tmp_path: Path) -> None:
    proc = cli(["evalrunner", "model.name=gpt9", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    _one_line_error(proc, "model.name='gpt9'", "nearest")


def test_a_rerun_with_another_config_in_the_same_dir_overwrites_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = cli(["evalrunner", "dataset=vqav2", "shots=2", "num_samples=10", f"hydra.run.dir={run}"], tmp_path)
    assert first.returncode == 0
    before = {p: p.read_bytes() for p in (run / "result.json", run / "predictions.json")}

    proc = cli(["evalrunner", "dataset=vqav2", "shots=4", "num_samples=10", f"hydra.run.dir={run}"], tmp_path)

    _one_line_error(proc, str(run), "different config")
    assert {p: p.read_bytes() for p in before} == before


def test_the_collector_on_an_empty_sweep_dir_says_so(tmp_path: Path) -> None:
    proc = cli(["evalrunner.collect", str(tmp_path)], tmp_path, launcher=(sys.executable, "-m"))

    _one_line_error(proc, str(tmp_path), "no jobs")
    assert not (tmp_path / "results.json").exists()


def test_the_collector_on_a_missing_dir_says_so(tmp_path: Path) -> None:
    proc = cli(["evalrunner.collect", str(tmp_path / "nope")], tmp_path)

    _one_line_error(proc, "nope", "not a directory")
