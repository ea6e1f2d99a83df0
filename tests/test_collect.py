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
    _job(tmp_path, ["model=hf", "model.path=org/ckpt"], dataset="vqav2", shots=0, trial=0, score=55.0,
         model_cfg={"name": "hf", "path": "org/ckpt"})

    c = collect(tmp_path)

    assert set(c.files) == {"model=nearest", "model.path=org/ckpt,model=hf"}
    assert json.loads(c.files["model.path=org/ckpt,model=hf"].read_text())["vqav2"][0]["trials"] == [55.0]
    assert c.files["model=nearest"] == tmp_path / "results.model=nearest.json"
    assert json.loads(c.files["model=nearest"].read_text())["vqav2"][0]["trials"] == [30.0]
    assert not (tmp_path / "results.json").exists()
    assert main([str(tmp_path)]) == 0


def test_jobs_that_differ_in_any_key_but_trial_are_never_merged_into_one_row(tmp_path: Path) -> None:
    _sweep(tmp_path, ["dataset=vqav2", "shots=4", "query_set_size=50,1000", "seed=1,2", "trial=0,1", "batch_size=2"])
    for q in (50, 1000):
        for seed in (1, 2):
            for trial in (0, 1):
                _job(tmp_path, ["dataset=vqav2", "shots=4", f"query_set_size={q}", f"seed={seed}", f"trial={trial}",
                                "batch_size=2"], dataset="vqav2", shots=4, trial=trial, score=q + seed + trial / 10)

    c = collect(tmp_path)

    assert sorted(c.files) == ["query_set_size=1000,seed=1", "query_set_size=1000,seed=2",
                               "query_set_size=50,seed=1", "query_set_size=50,seed=2"]
    for label, path in c.files.items():
        q, seed = (int(part.split("=")[1]) for part in label.split(","))
        [row] = json.loads(path.read_text())["vqav2"]
        assert row["trials"] == [q + seed, q + seed + 0.1]
    assert "query_set_size=50,seed=2 -> " in report(c)
    assert c.problems == []
