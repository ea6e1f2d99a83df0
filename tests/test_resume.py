"""Resume from partial files: a torn last line is dropped and redone, another config's partial work is refused."""

import json
from pathlib import Path

import pytest
from helpers import cli, one_line_error

ARGS = ["evalrunner", "dataset=vqav2", "shots=2", "num_samples=30", "batch_size=4"]


def _run(out: Path, *extra: str):
    return cli([*ARGS, *extra, f"hydra.run.dir={out}"], out.parent)


def test_a_torn_last_line_is_dropped_and_its_batch_redone_to_the_bytes_of_an_uninterrupted_run(tmp_path: Path) -> None:
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert _run(reference).returncode == 0
    assert _run(run).returncode == 0
    partial = run / "partial" / "rank0.jsonl"
    lines = partial.read_bytes().splitlines(keepends=True)
    # as a kill mid-write leaves it: 9 whole lines (two batches and one item of the third), then half a line
    partial.write_bytes(b"".join(lines[:9]) + lines[9][: len(lines[9]) // 2])
    (run / "result.json").unlink()
    (run / "predictions.json").unlink()

    resumed = _run(run)

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed 9 predictions" in (run / "evalrunner.log").read_text()
    assert (run / "predictions.json").read_bytes() == (reference / "predictions.json").read_bytes()
    records = [json.loads(line) for line in partial.read_bytes().splitlines()]  # every line whole again
    assert len({r["id"] for r in records}) == 30


def test_partial_predictions_stamped_by_another_config_are_refused_and_left_as_they_are(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "partial").mkdir(parents=True)
    (run / "partial" / "fingerprint.json").write_text(json.dumps({"fingerprint": "0123456789abcdef"}))
    (run / "partial" / "rank0.jsonl").write_text(json.dumps({"id": 1, "prediction": "yes"}) + "\n")
    before = {p: p.read_bytes() for p in (run / "partial").iterdir()}

    proc = _run(run)

    one_line_error(proc, str(run), "partial predictions of a different config")
    assert {p: p.read_bytes() for p in (run / "partial").iterdir()} == before
    assert not (run / "predictions.json").exists()


def test_a_rerun_of_an_hf_style_model_with_another_batch_size_is_refused(tmp_path: Path) -> None:
    # batch_size is part of the config of a model that is not batch-invariant (the faulty model claims it is not)
    run = tmp_path / "run"
    first = _run(run, "model.name=helpers.batchdep:BatchDependent")
    assert first.returncode == 0, first.stderr[-2000:]
    before = (run / "predictions.json").read_bytes()

    proc = cli([*ARGS[:-1], "batch_size=5", "model.name=helpers.batchdep:BatchDependent", f"hydra.run.dir={run}"],
               tmp_path)

    one_line_error(proc, str(run), "different config")
    assert (run / "predictions.json").read_bytes() == before
    # the same batch_size finds its result
    assert _run(run, "model.name=helpers.batchdep:BatchDependent").returncode == 0


def test_a_batch_invariant_model_resumes_with_another_batch_size(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _run(run).returncode == 0
    before = (run / "result.json").read_bytes()

    proc = cli([*ARGS[:-1], "batch_size=7", f"hydra.run.dir={run}"], tmp_path)

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run / "result.json").read_bytes() == before


@pytest.mark.slow
def test_a_line_of_nul_bytes_left_by_a_crash_is_dropped_with_all_after_it_and_redone_to_the_same_bytes(
        tmp_path: Path) -> None:
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert _run(reference).returncode == 0
    assert _run(run).returncode == 0
    partial = run / "partial" / "rank0.jsonl"
    lines = partial.read_bytes().splitlines(keepends=True)
    # the file system allocated the block of line 10 but never wrote it; later lines made it to disk
    partial.write_bytes(b"".join(lines[:9]) + b"\0" * (len(lines[9]) - 1) + b"\n" + b"".join(lines[10:]))
    (run / "result.json").unlink()
    (run / "predictions.json").unlink()

    resumed = _run(run)

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    log = (run / "evalrunner.log").read_text()
    assert "resumed 9 predictions" in log
    assert f"{partial}: dropping a damaged line" in log
    assert (run / "predictions.json").read_bytes() == (reference / "predictions.json").read_bytes()
    assert b"\0" not in partial.read_bytes()
