"""Classification jobs end to end: scores recounted from predictions.json, resume, and any number of ranks."""

import json
import sys
from pathlib import Path

import pytest
from helpers import SAMPLE, cli, compose_cfg
from helpers.oracles import sklearn_roc_auc

from evalrunner import tasks
from evalrunner.errors import UserError
from evalrunner.job import run
from evalrunner.registry import lookup

TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone")


def _job(dataset: str, out: Path, *overrides: str) -> tuple[dict, list[dict], Path]:
    run(compose_cfg([f"dataset={dataset}", "shots=4", "batch_size=4", *overrides]), out)
    return json.loads((out / "result.json").read_text()), json.loads((out / "predictions.json").read_text()), out


def test_imagenet_top1_and_top5_equal_their_recount_from_predictions_json(tmp_path: Path) -> None:
    result, preds, out = _job("imagenet", tmp_path / "job")

    truth = {f"val/{d.name}/{f.name}": d.name for d in (SAMPLE / "imagenet" / "val").iterdir() for f in d.iterdir()}
    names = dict(line.split("\t") for line in (SAMPLE / "imagenet" / "class_names.tsv").read_text().splitlines())
    assert sorted(p["image"] for p in preds) == sorted(truth)
    top1 = sum(p["class"] == names[truth[p["image"]]] for p in preds)
    top5 = sum(names[truth[p["image"]]] in p["top5"] for p in preds)
    assert all(p["top5"][0] == p["class"] and len(p["top5"]) == 5 for p in preds)
    assert result["score"] == 100 * top1 / len(preds) and result["top5"] == 100 * top5 / len(preds)
    assert 0 < top1 < len(preds)  # neither trivially right nor wrong: the recount checks something
    item_scores = json.loads((out / "item_scores.json").read_text())
    assert sum(item_scores.values()) / len(item_scores) == result["score"]


def test_hatefulmemes_roc_auc_equals_sklearn_on_predictions_json(tmp_path: Path) -> None:
    result, preds, out = _job("hatefulmemes", tmp_path / "job")

    labels = {json.loads(line)["id"]: json.loads(line)["label"]
              for line in (SAMPLE / "hatefulmemes" / "dev_seen.jsonl").read_text().splitlines()}
    assert sorted(p["id"] for p in preds) == sorted(labels)
    assert all(p["label"] == int(p["proba"] > 0.5) for p in preds)
    reference = 100 * sklearn_roc_auc([p["proba"] for p in preds], [labels[p["id"]] for p in preds])
    assert result["score"] == pytest.approx(reference, abs=1e-10)
    assert result["metric"] == "ROC-AUC" and not (out / "item_scores.json").exists()


def test_an_interrupted_classification_job_resumes_from_its_partial_file_to_the_same_predictions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, whole, _ = _job("imagenet", tmp_path / "whole")
    out = tmp_path / "cut"
    _job("imagenet", out)
    partial = out / "partial" / "rank0.jsonl"
    lines = partial.read_text().splitlines(keepends=True)
    partial.write_text("".join(lines[:12]) + lines[12][:10])  # a kill mid-line, after three batches
    for name in ("predictions.json", "result.json", "item_scores.json"):
        (out / name).unlink()

    with caplog.at_level("INFO", logger="evalrunner"):
        _, resumed, _ = _job("imagenet", out)

    assert "resumed 12 predictions" in caplog.text
    assert resumed == whole


def test_a_model_that_cannot_rank_is_refused_for_a_classification_dataset() -> None:
    class GenerateOnly:
        ranks = False

        def generate(self, batch: object) -> list[str]:
            return []

    dataset = lookup("dataset", "hatefulmemes")(compose_cfg(["dataset=hatefulmemes"]).dataset, SAMPLE)

    with pytest.raises(UserError, match="model.name=mine: .* ranks candidates by likelihood, and this model has no"):
        tasks.predictor(dataset, GenerateOnly(), "mine")  # type: ignore[arg-type]


@pytest.mark.slow
def test_one_two_and_three_ranks_give_byte_identical_classification_predictions(tmp_path: Path) -> None:
    files = {}
    for n in (1, 2, 3):
        run_dir = tmp_path / f"n{n}"
        # 30 items in batches of 4: 8 batches, dealt unevenly to 2 and 3 ranks
        proc = cli([f"--nproc_per_node={n}", "-m", "evalrunner", "dataset=imagenet", "shots=4", "batch_size=4",
                    f"hydra.run.dir={run_dir}"], tmp_path, launcher=TORCHRUN, timeout=240)
        assert proc.returncode == 0, proc.stderr[-2000:]
        files[n] = (run_dir / "predictions.json").read_bytes()
        assert json.loads((run_dir / "result.json").read_text())["world_size"] == n

    assert files[1] == files[2] == files[3]


@pytest.mark.slow
def test_the_issues_sweep_runs_with_a_tiny_hf_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from helpers import tiny_hf

    checkpoint = tiny_hf.build_llava(tmp_path / "llava")
    sweep = tmp_path / "sweep"

    proc = cli(["evalrunner", "-m", "dataset=imagenet,hatefulmemes", "shots=0,4", "model=hf",
                f"model.path={checkpoint}", f"hydra.sweep.dir={sweep}"], tmp_path, env={"HF_HUB_OFFLINE": "1"})

    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((sweep / "results.json").read_text())
    assert {k: [r["shots"] for r in v] for k, v in results.items()} == {"imagenet": [0, 4], "hatefulmemes": [0, 4]}
