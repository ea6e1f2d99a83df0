import json
from pathlib import Path

import numpy as np
import yaml

from evalrunner.collect import collect, main, report


def _job(sweep: Path, overrides: list[str], **result: object) -> Path:
    d = sweep / ",".join(overrides)
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if result:
        model = result.pop("model_cfg", {"name": "nearest"})
        (d / "result.json").write_text(json.dumps({"seed": 42, **result, "config": {"model": model}}))
    return d


def _sweep(sweep: Path, task: list[str]) -> None:
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task}}}))


def test_trials_are_ordered_by_trial_and_shots_ascend_with_population_stddev(tmp_path: Path) -> None:
    _sweep(tmp_path, ["shots=32,0", "trial=0,1"])
    scores = {(32, 0): 50.0, (32, 1): 40.0, (0, 0): 10.0, (0, 1): 12.5}
    for (shots, trial), score in scores.items():
        _job(tmp_path, [f"shots={shots}", f"trial={trial}"], dataset="coco", shots=shots, trial=trial, score=score)

    c = collect(tmp_path)

    table = json.loads((tmp_path / "results.json").read_text())
    assert table == {"coco": [
        {"shots": 0, "trials": [10.0, 12.5], "mean": 11.25, "stddev": float(np.std([10.0, 12.5]))},
        {"shots": 32, "trials": [50.0, 40.0], "mean": 45.0, "stddev": 5.0},
    ]}
    assert c.problems == []
    assert "45.00" in report(c)


def test_failed_unfinished_and_missing_jobs_are_reported_not_fatal(tmp_path: Path) -> None:
    _sweep(tmp_path, ["dataset=coco", "shots=0,4,8,16"])
    _job(tmp_path, ["dataset=coco", "shots=0"], dataset="coco", shots=0, trial=0, score=1.0)
    failed = _job(tmp_path, ["dataset=coco", "shots=4"])
    (failed / "error.json").write_text(json.dumps({"error": "rank 1: ValueError: boom"}))
    (failed / "evalrunner.log").write_text("")
    _job(tmp_path, ["dataset=coco", "shots=8"])

    c = collect(tmp_path)

    assert json.loads((tmp_path / "results.json").read_text())["coco"][0]["trials"] == [1.0]
    text = "\n".join(c.problems)
    assert "FAILED  dataset=coco shots=4: rank 1: ValueError: boom" in text and str(failed / "evalrunner.log") in text
    assert "UNFINISHED  dataset=coco shots=8" in text
    assert "MISSING  dataset=coco shots=16" in text
    assert main([str(tmp_path)]) == 1


def test_each_model_of_a_sweep_gets_its_own_results_file(tmp_path: Path) -> None:
    _job(tmp_path, ["model=nearest"], dataset="vqav2", shots=0, trial=0, score=30.0)
    _job(tmp_path, ["model=hf"], dataset="vqav2", shots=0, trial=0, score=55.0,
         model_cfg={"name": "hf", "path": "org/ckpt"})

    c = collect(tmp_path)

    assert set(c.files) == {"nearest", "hf:org/ckpt"}
    assert json.loads(c.files["hf:org/ckpt"].read_text())["vqav2"][0]["trials"] == [55.0]
    assert json.loads(c.files["nearest"].read_text())["vqav2"][0]["trials"] == [30.0]
    assert not (tmp_path / "results.json").exists()
    assert main([str(tmp_path)]) == 0
