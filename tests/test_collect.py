import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from evalrunner.collect import collect, main, report

_BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
_DEFAULTS: dict[str, Any] = {"shots": 4, "trial": 0, "seed": 42, "query_set_size": 2048, "batch_size": 8,
                             "dataset": {"name": "coco"}, "model": {"name": "nearest"}}


def _config(overrides: list[str]) -> dict[str, Any]:
    """The resolved config those overrides give, as result.json holds it (a small stand-in for the real one)."""
    config = json.loads(json.dumps(_DEFAULTS))
    for o in overrides:
        key, value = o.lstrip("+").split("=", 1)
        *parents, leaf = key.split(".")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        if key in ("dataset", "model"):
            node[leaf] = {"name": value}
        else:
            node[leaf] = yaml.safe_load(value)
    return config


def _job(sweep: Path, overrides: list[str], score: float | None = None, fingerprint: str | None = None,
         folder: str | None = None) -> Path:
    d = sweep / (folder or ",".join(sorted(overrides)))
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if score is not None:
        config = _config(overrides)
        fp = fingerprint or json.dumps({k: v for k, v in config.items() if k != "batch_size"}, sort_keys=True)
        (d / "result.json").write_text(json.dumps({
            "dataset": config["dataset"]["name"], "shots": config["shots"], "trial": config["trial"],
            "seed": config["seed"], "score": score, "fingerprint": fp, "config": config}))
    return d


def _sweep(sweep: Path, task: list[str], params: dict[str, str] | None = None) -> None:
    sweep.mkdir(parents=True, exist_ok=True)
    saved = {"hydra": {"sweeper": {"_target_": _BASIC, "max_batch_size": None, "params": params},
                       "overrides": {"task": task}}}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(saved))


def test_trials_are_ordered_by_trial_and_shots_ascend_with_population_stddev(tmp_path: Path) -> None:
    _sweep(tmp_path, ["shots=32,0", "trial=0,1"])
    scores = {(32, 0): 50.0, (32, 1): 40.0, (0, 0): 10.0, (0, 1): 12.5}
    for (shots, trial), score in scores.items():
        _job(tmp_path, [f"shots={shots}", f"trial={trial}"], score)

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
    _job(tmp_path, ["dataset=coco", "shots=0"], 1.0)
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
    _job(tmp_path, ["dataset=vqav2", "shots=0", "model=nearest"], 30.0)
    _job(tmp_path, ["dataset=vqav2", "shots=0", "model=hf", "model.path=org/ckpt"], 55.0, folder="hf")

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
                                "batch_size=2"], q + seed + trial / 10)

    c = collect(tmp_path)

    assert sorted(c.files) == ["query_set_size=1000,seed=1", "query_set_size=1000,seed=2",
                               "query_set_size=50,seed=1", "query_set_size=50,seed=2"]
    for label, path in c.files.items():
        q, seed = (int(part.split("=")[1]) for part in label.split(","))
        [row] = json.loads(path.read_text())["vqav2"]
        assert row["trials"] == [q + seed, q + seed + 0.1]
    assert "query_set_size=50,seed=2 -> " in report(c)
    assert c.problems == []


def test_one_job_in_two_folders_of_an_extended_sweep_counts_once(tmp_path: Path) -> None:
    # `-m dataset=coco shots=4`, then `-m dataset=coco shots=4 trial=0,1` into the same folder
    first = _job(tmp_path, ["dataset=coco", "shots=4"], 80.59)
    _sweep(tmp_path, ["dataset=coco", "shots=4", "trial=0,1"])
    again = _job(tmp_path, ["dataset=coco", "shots=4", "trial=0"], 80.59)
    _job(tmp_path, ["dataset=coco", "shots=4", "trial=1"], 65.73)

    c = collect(tmp_path)

    [row] = json.loads((tmp_path / "results.json").read_text())["coco"]
    assert row["trials"] == [80.59, 65.73]
    [note] = c.notes
    assert str(first) in note and str(again) in note and "counted once" in note
    assert c.problems == [] and main([str(tmp_path)]) == 0


def test_a_key_passed_at_its_default_value_is_the_default_config(tmp_path: Path) -> None:
    _job(tmp_path, ["dataset=coco", "shots=4", "trial=0"], 10.0)
    _job(tmp_path, ["dataset=coco", "shots=4", "seed=42", "trial=1"], 20.0)
    _job(tmp_path, ["dataset=coco", "shots=4", "seed=1", "trial=0"], 30.0)

    c = collect(tmp_path)

    assert sorted(c.files) == ["default", "seed=1"]
    assert json.loads(c.files["default"].read_text())["coco"][0]["trials"] == [10.0, 20.0]
    assert json.loads(c.files["seed=1"].read_text())["coco"][0]["trials"] == [30.0]


def test_two_different_jobs_in_one_trial_are_counted_neither_and_named_both(tmp_path: Path) -> None:
    # batch_size leaves the folder name; for a model whose output depends on its batch it is in the fingerprint
    a = _job(tmp_path, ["dataset=coco", "shots=4"], 10.0, fingerprint="aaaa", folder="a")
    b = _job(tmp_path, ["dataset=coco", "shots=4", "batch_size=2"], 11.0, fingerprint="bbbb", folder="b")
    _job(tmp_path, ["dataset=coco", "shots=0"], 5.0)

    c = collect(tmp_path)

    [problem] = c.problems
    assert problem.startswith("CONFLICT  coco shots=4 trial=0") and str(a) in problem and str(b) in problem
    assert [r["shots"] for r in json.loads((tmp_path / "results.json").read_text())["coco"]] == [0]
    assert main([str(tmp_path)]) == 1


def test_a_sweep_folder_that_gains_configs_keeps_no_stale_results_file(tmp_path: Path) -> None:
    _job(tmp_path, ["dataset=coco", "shots=4"], 10.0)
    collect(tmp_path)
    assert (tmp_path / "results.json").exists()

    _job(tmp_path, ["dataset=coco", "shots=4", "seed=1"], 20.0)
    c = collect(tmp_path)

    assert sorted(p.name for p in tmp_path.glob("results*.json")) == ["results.default.json", "results.seed=1.json"]
    assert set(c.files.values()) == set(tmp_path.glob("results*.json"))


_MISTYPED = json.dumps({"dataset": "coco", "shots": "4", "trial": 0, "score": 1, "config": {}})


@pytest.mark.parametrize("damage", [
    "result.json:{\"score\": ", "result.json:\x00\x00\x00", "result.json:{\"score\": 1}",
                                    "result.json:[1]", f"result.json:{_MISTYPED}", "error.json:not json",
                                    "error.json:[]", ".hydra/overrides.yaml:[unclosed"])
def test_a_damaged_job_file_is_listed_and_the_others_are_still_collected(
        tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    name, content = damage.split(":", 1)
    _job(tmp_path, ["dataset=coco", "shots=0"], 1.0)
    bad = _job(tmp_path, ["dataset=coco", "shots=4"], None if name == "error.json" else 2.0)
    (bad / name).write_text(content)

    status = main([str(tmp_path)])  # returns: no exception, so no traceback

    assert status == 1
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("DAMAGED")]
    assert name.split("/")[-1] in line and str(bad) in line
    assert json.loads((tmp_path / "results.json").read_text())["coco"] == [
        {"shots": 0, "trials": [1.0], "mean": 1.0, "stddev": 0.0}]


def test_the_jobs_of_a_sweep_defined_in_yaml_are_expected_not_the_command_line(tmp_path: Path) -> None:
    _sweep(tmp_path, ["dataset=coco"], params={"shots": "0,2", "trial": "0,1"})
    for shots, trial in ((0, 0), (0, 1), (2, 0)):
        _job(tmp_path, [f"shots={shots}", f"trial={trial}", "dataset=coco"], 1.0)

    c = collect(tmp_path)

    assert c.problems == ["MISSING  dataset=coco shots=2 trial=1: the job never started"]


def test_a_sweeper_other_than_the_basic_one_is_trusted_for_the_jobs_it_launched(tmp_path: Path) -> None:
    _sweep(tmp_path, ["dataset=coco", "shots=0,2,4"])
    saved = yaml.safe_load((tmp_path / "multirun.yaml").read_text())
    saved["hydra"]["sweeper"] = {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(saved))
    _job(tmp_path, ["dataset=coco", "shots=2"], 1.0)

    c = collect(tmp_path)

    assert c.problems == []


def test_a_job_folder_name_holds_no_slash_and_tells_paths_apart() -> None:
    from evalrunner.folders import job_dirname

    a = job_dirname(["dataset=vqav2", "data_root=/a/data", "model.path=/x/y/", "rices.model=org/name"])
    b = job_dirname(["dataset=vqav2", "data_root=/b/data", "model.path=/x/y/", "rices.model=org/name"])

    assert "/" not in a and a.startswith("data_root=data-") and ",model.path=y-" in a and ",rices.model=name-" in a
    assert a != b and a == job_dirname(["rices.model=org/name", "model.path=/x/y/", "data_root=/a/data",
                                        "dataset=vqav2"])
    assert job_dirname(["shots=4", "dataset=coco", "batch_size=2", "+model.latency_s=0.1"]) == "dataset=coco,shots=4"


def test_a_job_folder_name_of_many_path_values_stays_under_the_file_systems_limit_and_is_found_again() -> None:
    from evalrunner.folders import job_dirname

    paths = [f"model.part{i}=/ckpt/part{i}/w.pt" for i in range(9)]
    overrides = ["dataset=vqav2", "model=openflamingo", "shots=2", *paths]
    other = [o.replace("part8/w.pt", "part8/v.pt") for o in overrides]

    name = job_dirname(overrides)

    assert len(name.encode()) <= 200 and "/" not in name
    assert "dataset=vqav2" in name and "shots=2" in name  # plain values are kept before shortened paths
    assert name == job_dirname(list(reversed(overrides)))
    assert job_dirname(other) != name  # a dropped override still tells two folders apart, through the hash
