"""A dataset from one YAML file in the user's config folder, `format: jsonl`: the built-ins converted to it predict
and score exactly as the built-ins do, and a wrong or missing key is one line naming it."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import SAMPLE, cli, compose_cfg
from omegaconf import OmegaConf

from evalrunner import tasks
from evalrunner.datasets import build, task_of
from evalrunner.datasets.base import Item
from evalrunner.datasets.jsonl_config import checked
from evalrunner.errors import UserError

TASKS = {"vqav2": "vqa", "coco": "caption", "hatefulmemes": "classification"}
METRICS = {"vqav2": "vqa_accuracy", "coco": "cider", "hatefulmemes": "roc_auc"}


def _record(task: str, it: Item) -> dict[str, Any]:
    image = str(Path(it.image_path).relative_to(SAMPLE))
    if task == "vqa":
        return {"id": it.id, "image": image, "question": it.question, "answers": list(it.references),
                "answer": it.answer}
    if task == "caption":
        return {"id": it.id, "image": image, "captions": list(it.references)}
    return {"id": it.id, "image": image, "label": ["no", "yes"].index(it.answer), "text": it.question}


def convert(name: str, folder: Path) -> Path:
    """The bundled sample of a built-in dataset as two JSON-lines files and one YAML file, in the same order."""
    cfg = compose_cfg([f"dataset={name}"]).dataset
    ds = build(cfg, SAMPLE)
    task = TASKS[name]
    for split, items in (("test", ds.test_items()), ("demo", ds.demo_pool())):
        lines = [json.dumps(_record(task, it)) for it in items]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    spec: dict[str, Any] = {"name": f"my{name}", "format": "jsonl", "task": task, "metric": METRICS[name],
                            "test_file": str(folder / "test.jsonl"), "demo_file": str(folder / "demo.jsonl"),
                            "image_root": str(SAMPLE), "prompt": OmegaConf.to_container(cfg.prompt)}
    if task != "classification":
        spec["generation"] = OmegaConf.to_container(cfg.generation)
    if task == "classification":
        spec["candidates"] = ["no", "yes"]
    conf = folder / "conf"
    (conf / "dataset").mkdir(parents=True)
    (conf / "dataset" / f"my{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return conf


def _run(tmp_path: Path, run: str, *args: str) -> tuple[bytes, dict[str, Any]]:
    proc = cli(["evalrunner", "num_samples=40", "shots=2", f"hydra.run.dir={tmp_path / run}", *args], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / run / "result.json").read_text())
    return (tmp_path / run / "predictions.json").read_bytes(), result


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_built_in_dataset_converted_to_jsonl_predicts_byte_identically_and_scores_the_same(
        tmp_path: Path, name: str) -> None:
    conf = convert(name, tmp_path)

    builtin, builtin_result = _run(tmp_path, "builtin", f"dataset={name}")
    mine, mine_result = _run(tmp_path, "mine", f"hydra.searchpath=[file://{conf}]", f"dataset=my{name}")

    assert mine == builtin
    assert mine_result["score"] == builtin_result["score"] and mine_result["metric"] == builtin_result["metric"]
    assert mine_result["num_samples"] == len(json.loads(mine)) == 40
    # what the report reads besides predictions (ROC-AUC's labels) is the built-in's too
    extras = [sorted(p.name for p in (tmp_path / run).glob("*.json")) for run in ("builtin", "mine")]
    assert extras[0] == extras[1]
    if (tmp_path / "builtin" / "report_data.json").exists():
        saved = [(tmp_path / run / "report_data.json").read_bytes() for run in ("builtin", "mine")]
        assert saved[0] == saved[1]


def _spec(tmp_path: Path, **changes: Any) -> Any:
    conf = convert("vqav2", tmp_path)
    spec = yaml.safe_load((conf / "dataset" / "myvqav2.yaml").read_text())
    spec.update(changes)
    return OmegaConf.create({k: v for k, v in spec.items() if v is not None})


def test_a_jsonl_dataset_reads_its_task_from_its_file_and_fills_the_generation_defaults(tmp_path: Path) -> None:
    cfg = _spec(tmp_path, generation=None, task="vqa")

    ds = build(cfg, SAMPLE)

    assert task_of(cfg) == ds.task == "vqa" and tasks.kind(ds) == "generate"
    assert cfg.generation.max_new_tokens == 5 and cfg.vqa_variant == "official"
    assert len(ds.test_items()) == 240 and ds.test_items()[0].answer


@pytest.mark.parametrize(("changes", "needle"), [
    ({"test_file": None}, "dataset.test_file is missing"),
    ({"tets_file": "x.jsonl"}, "dataset.tets_file"),
    ({"task": "detection"}, "dataset.task='detection': choose vqa, caption, classification"),
    ({"metric": "cider"}, "dataset.metric='cider' does not fit task vqa"),
    ({"generation": {"num_beams": "three"}}, "dataset.generation.num_beams"),
])
def test_a_wrong_or_missing_key_of_a_jsonl_dataset_is_one_line_naming_it(
        tmp_path: Path, changes: dict[str, Any], needle: str) -> None:
    cfg = _spec(tmp_path, **changes)

    with pytest.raises(UserError) as e:
        checked(cfg)

    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(("line", "needle"), [
    ('{"id": 1, "image": "coco/val2014/none.jpg", "question": "q"', "line 2 of .* is not JSON"),
    ('{"id": "one", "image": "x.jpg", "question": "q", "answers": ["a"]}', "line 2 of .* an integer id"),
    ('{"id": 7, "question": "q", "answers": ["a"]}', "line 2 of .* lacks 'image'"),
])
def test_a_bad_record_names_the_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    cfg = _spec(tmp_path)
    path = Path(cfg.demo_file)
    path.write_text(path.read_text().splitlines()[0] + "\n" + line + "\n")

    with pytest.raises(UserError, match=f"dataset.demo_file: {needle}"):
        build(cfg, SAMPLE)
