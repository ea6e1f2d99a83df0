"""A sweep's saved predictions, rescored by the reference code straight from the data files, give result.json's score.

The rescoring reads the official files itself (not through our loaders) and runs the oracles: pycocoevalcap's
PTBTokenizer + Cider for captions, axlearn's VQA rules for VQA.
"""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import SAMPLE, cli, oracles

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("java")]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    proc = cli(["evalrunner", "-m", "dataset=coco,vqav2", "shots=0,4", "num_samples=60",
                f"hydra.sweep.dir={root / 'sweep'}"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "sweep"


@pytest.mark.parametrize("shots", [0, 4])
def test_coco_scores_equal_pycocoevalcap_on_the_karpathy_references(sweep: Path, shots: int) -> None:
    job = sweep / f"dataset=coco,num_samples=60,shots={shots}"
    predicted = {p["image_id"]: p["caption"] for p in json.loads((job / "predictions.json").read_text())}
    karpathy = json.loads((SAMPLE / "coco" / "dataset_coco.json").read_text())
    # image order of the split file, as COCOEvalCap takes the images of its annotation file
    order = [img["cocoid"] for img in karpathy["images"] if img["cocoid"] in predicted]
    references = {img["cocoid"]: [s["raw"] for s in img["sentences"]] for img in karpathy["images"]}

    score, _ = oracles.pycocoevalcap_cider_run({i: predicted[i] for i in order}, references)[2:]

    assert len(order) == len(predicted) == 60
    assert json.loads((job / "result.json").read_text())["score"] == float(Decimal(repr(score)).scaleb(2))


@pytest.mark.parametrize("shots", [0, 4])
def test_vqav2_scores_equal_axlearns_vqa_accuracy_on_the_official_annotations(sweep: Path, shots: int) -> None:
    job = sweep / f"dataset=vqav2,num_samples=60,shots={shots}"
    predicted = {p["question_id"]: p["answer"] for p in json.loads((job / "predictions.json").read_text())}
    annotations = json.loads((SAMPLE / "vqav2" / "v2_mscoco_val2014_annotations.json").read_text())["annotations"]
    answers = {a["question_id"]: [h["answer"] for h in a["answers"]] for a in annotations}

    per_question = oracles.axlearn_scores(predicted, answers)

    assert len(predicted) == 60
    result = json.loads((job / "result.json").read_text())
    assert result["score"] == 100 * sum(per_question) / len(per_question)
    assert result["vqa_variant"] == "official"
