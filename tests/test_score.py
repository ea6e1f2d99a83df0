"""Rescoring saved predictions with another metric setting, and importing other tools' predictions."""

import csv
import json
from pathlib import Path

import pytest
import yaml
from helpers import compose_cfg

from evalrunner import run
from evalrunner.collect import collect
from evalrunner.score import main, rescore_job, rescore_sweep

VQA = ["dataset=vqav2", "num_samples=40", "shots=2", "model.name=helpers.capitalized:Capitalized"]


def _job(out: Path, overrides: list[str]) -> Path:
    """A finished job in `out`, with the .hydra/overrides.yaml that makes it a sweep's job for the collector."""
    run(compose_cfg(overrides), out)
    (out / ".hydra").mkdir(exist_ok=True)
    (out / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return out


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_rescored_vqa_job_equals_a_fresh_job_run_with_that_variant(tmp_path: Path) -> None:
    job = _job(tmp_path / "official", VQA)
    before = {p.name: p.read_bytes() for p in job.iterdir() if p.is_file()}
    fresh = _job(tmp_path / "fresh", [*VQA, "dataset.vqa_variant=openflamingo"])

    rescore_job(job, ["dataset.vqa_variant=openflamingo"])

    new = _read(job / "result.dataset.vqa_variant=openflamingo.json")
    assert new["score"] == _read(fresh / "result.json")["score"] != _read(job / "result.json")["score"]
    assert new["fingerprint"] == _read(fresh / "result.json")["fingerprint"]
    assert new["vqa_variant"] == "openflamingo"
    assert ((job / "item_scores.dataset.vqa_variant=openflamingo.json").read_bytes()
            == (fresh / "item_scores.json").read_bytes())
    assert {n: (job / n).read_bytes() for n in before} == before


def test_a_caption_job_rescored_with_the_java_tokenizer_equals_a_fresh_job(tmp_path: Path, java: None) -> None:
    coco = ["dataset=coco", "num_samples=8", "shots=2"]
    job = _job(tmp_path / "python", [*coco, "dataset.cider_tokenizer=python"])
    fresh = _job(tmp_path / "java", [*coco, "dataset.cider_tokenizer=java"])

    rescore_job(job, ["dataset.cider_tokenizer=java"])

    new = _read(job / "result.dataset.cider_tokenizer=java.json")
    assert (new["score"], new["fingerprint"]) == (_read(fresh / "result.json")["score"],
                                                  _read(fresh / "result.json")["fingerprint"])
    assert _read(job / "item_scores.dataset.cider_tokenizer=java.json") == _read(fresh / "item_scores.json")


def test_rescoring_a_sweep_writes_a_results_file_for_the_new_setting_beside_the_original(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for shots in (0, 2):
        _job(sweep / f"shots={shots}", ["dataset=vqav2", "num_samples=40", f"shots={shots}",
                                         "model.name=helpers.capitalized:Capitalized"])
    collect(sweep)
    original = (sweep / "results.json").read_bytes()

    [written] = rescore_sweep(sweep, ["dataset.vqa_variant=openflamingo"])

    assert written.name == "rescored.dataset.vqa_variant=openflamingo.json"
    rows = _read(written)["vqav2"]
    assert [r["shots"] for r in rows] == [0, 2]
    assert [r["trials"][0] for r in rows] == [
        _read(sweep / f"shots={s}" / "result.dataset.vqa_variant=openflamingo.json")["score"] for s in (0, 2)]
    assert (sweep / "results.json").read_bytes() == original


def test_a_rescore_that_would_change_the_predictions_is_a_one_line_error(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    job = _job(tmp_path / "job", VQA)
    capsys.readouterr()  # the job's own progress bar

    code = main([str(job), "shots=4"])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "'shots=4'" in err
    assert not list(job.glob("result.*.json"))


def _as_format(fmt: str, records: list[dict], out: Path) -> Path:
    """The job's predictions.json written as another tool writes its predictions."""
    if fmt == "openflamingo":
        out = out.with_suffix(".json")
        out.write_text(json.dumps(records))
    elif fmt == "lmms-eval":
        out = out.with_suffix(".jsonl")
        out.write_text("".join(json.dumps({"doc_id": n, "doc": {"question_id": r["question_id"], "question": "?"},
                                           "filtered_resps": [r["answer"]]}) + "\n" for n, r in enumerate(records)))
    elif fmt == "vlmevalkit":
        out = out.with_suffix(".tsv")
        with open(out, "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t")
            writer.writerow(["index", "question", "prediction"])
            writer.writerows([r["question_id"], "?", r["answer"]] for r in records)
    else:
        out = out.with_suffix(".json")
        out.write_text(json.dumps({str(r["question_id"]): r["answer"] for r in records}))
    return out


@pytest.mark.parametrize("fmt", ["openflamingo", "lmms-eval", "vlmevalkit", "plain"])
def test_imported_predictions_score_exactly_as_the_job_that_made_them(tmp_path: Path, fmt: str) -> None:
    job = _job(tmp_path / "job", VQA)
    source = _as_format(fmt, list(reversed(_read(job / "predictions.json"))), tmp_path / "theirs")

    code = main(["--import", str(source), "--format", fmt, str(tmp_path / "imported"), *VQA[:3]])

    assert code == 0
    imported = _read(tmp_path / "imported" / "result.json")
    assert imported["score"] == _read(job / "result.json")["score"]
    assert imported["model"] == f"imported:{fmt}" and imported["imported"]["format"] == fmt
    assert (tmp_path / "imported" / "item_scores.json").read_bytes() == (job / "item_scores.json").read_bytes()
    assert (tmp_path / "imported" / "predictions.json").read_bytes() == (job / "predictions.json").read_bytes()


@pytest.mark.parametrize("change", ["unknown", "missing"])
def test_an_import_with_an_unknown_or_missing_id_is_a_one_line_error(tmp_path: Path, change: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    job = _job(tmp_path / "job", VQA)
    answers = {str(r["question_id"]): r["answer"] for r in _read(job / "predictions.json")}
    if change == "unknown":
        answers["999999999"] = "yes"
    else:
        answers.pop(next(iter(answers)))
    (tmp_path / "plain.json").write_text(json.dumps(answers))
    capsys.readouterr()  # the job's own progress bar

    code = main(["--import", str(tmp_path / "plain.json"), "--format", "plain", str(tmp_path / "out"), *VQA[:3]])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert ("999999999" in err) if change == "unknown" else ("no prediction" in err)
    assert not (tmp_path / "out" / "result.json").exists()


def test_imported_jobs_form_a_sweep_that_the_collector_reads(tmp_path: Path) -> None:
    job = _job(tmp_path / "job", VQA)
    source = _as_format("plain", _read(job / "predictions.json"), tmp_path / "theirs")
    for shots in (2, 4):
        main(["--import", str(source), "--format", "plain", str(tmp_path / "imports" / f"shots={shots}"),
              "dataset=vqav2", "num_samples=40", f"shots={shots}"])

    found = collect(tmp_path / "imports")

    assert not found.problems
    assert [r["shots"] for r in found.tables["all jobs"]["vqav2"]] == [2, 4]
