"""OK-VQA, VizWiz, TextVQA and Flickr30k: loaders for the official files, protocols, submissions, exact scores."""

import json
import shutil
from pathlib import Path

import pytest
from helpers import SAMPLE, cli, compose_cfg, official_layouts, oracles
from helpers.nltk_resources import nltk_data  # noqa: F401  (fixture)
from omegaconf import DictConfig

from evalrunner import protocol
from evalrunner.datasets.base import Item, prediction_records
from evalrunner.demos import DemoSampler
from evalrunner.errors import UserError
from evalrunner.registry import lookup

NEW = ("okvqa", "vizwiz", "textvqa", "flickr30k")
VQA = ("vqav2", "okvqa", "vizwiz", "textvqa")


def dataset(name: str, overrides: tuple[str, ...] = (), root: Path = SAMPLE):  # type: ignore[no-untyped-def]
    cfg = compose_cfg([f"dataset={name}", *overrides])
    return lookup("dataset", name)(cfg.dataset, root)


@pytest.fixture
def official(tmp_path: Path) -> Path:
    return official_layouts.build(tmp_path / "data")


@pytest.mark.usefixtures("nltk_data")
@pytest.mark.parametrize("name", NEW)
def test_each_dataset_loads_its_bundled_sample_with_every_image_present(name: str) -> None:
    ds = dataset(name)

    test, demos = ds.test_items(), ds.demo_pool()

    assert len(test) >= 40 and len(demos) >= 120
    assert len({it.id for it in test}) == len(test)
    assert all(Path(it.image_path).is_file() for it in [*test, *demos])
    assert all(it.references for it in test) and all(it.answer for it in demos)
    assert not {it.image_id for it in test} & {it.image_id for it in demos}


def test_okvqa_sample_reuses_the_coco_sample_images() -> None:
    questions = json.loads((SAMPLE / "okvqa" / "OpenEnded_mscoco_val2014_questions.json").read_text())["questions"]

    paths = {SAMPLE / "coco" / "val2014" / f"COCO_val2014_{q['image_id']:012d}.jpg" for q in questions}

    assert all(p.is_file() for p in paths)
    assert not (SAMPLE / "okvqa" / "val2014").exists()


def test_sample_files_have_the_official_fields() -> None:
    vizwiz = json.loads((SAMPLE / "vizwiz" / "Annotations" / "val.json").read_text())
    vizwiz_test = json.loads((SAMPLE / "vizwiz" / "Annotations" / "test.json").read_text())
    textvqa = json.loads((SAMPLE / "textvqa" / "TextVQA_0.5.1_val.json").read_text())
    okvqa = json.loads((SAMPLE / "okvqa" / "mscoco_val2014_annotations.json").read_text())["annotations"]
    flickr = json.loads((SAMPLE / "flickr30k" / "dataset_flickr30k.json").read_text())["images"]

    assert all(set(e) == {"image", "question", "answers", "answer_type", "answerable"} for e in vizwiz)
    assert all(set(e) == {"image", "question"} for e in vizwiz_test)
    assert any(a["answer"] == "unanswerable" for e in vizwiz for a in e["answers"])
    assert set(textvqa) == {"dataset_type", "dataset_name", "dataset_version", "data"}
    assert all(len(e["answers"]) == 10 and len(e["image_id"]) == 16 for e in textvqa["data"])
    assert all({"raw_answer", "answer", "answer_id"} <= set(a) for e in okvqa for a in e["answers"])
    assert any(a["raw_answer"] != a["answer"] for e in okvqa for a in e["answers"])
    assert {i["split"] for i in flickr} == {"train", "val", "test"}
    assert all(set(i) == {"sentids", "imgid", "sentences", "split", "filename"} for i in flickr)


def test_the_openflamingo_protocol_picks_its_metric_demo_answers_and_generation_lengths() -> None:
    official = {n: compose_cfg([f"dataset={n}"]) for n in VQA}
    flamingo = {n: compose_cfg([f"dataset={n}", "protocol=openflamingo"]) for n in VQA}

    assert {n: c.dataset.vqa_variant for n, c in official.items()} == {
        "vqav2": "official", "okvqa": "official", "vizwiz": "official", "textvqa": "textvqa"}
    assert {c.dataset.vqa_variant for c in flamingo.values()} == {"openflamingo"}
    assert {c.dataset.demo_answer for c in flamingo.values()} == {"first"}
    assert {n: c.dataset.generation.max_new_tokens for n, c in flamingo.items()} == {
        "vqav2": 5, "okvqa": 5, "vizwiz": 5, "textvqa": 10}
    assert [c["vqav2"].protocol.zero_shot_text_demos for c in (official, flamingo)] == [0, 2]
    overridden = compose_cfg(["dataset=textvqa", "protocol=openflamingo", "dataset.vqa_variant=textvqa"])
    assert overridden.dataset.vqa_variant == "textvqa"


def _cfg(shots: int, name: str) -> DictConfig:
    return compose_cfg([f"shots={shots}", f"protocol={name}"])


def test_zero_shots_under_openflamingo_draws_two_demos_and_drops_their_images() -> None:
    pool = dataset("vqav2").demo_pool()[:50]
    item = dataset("vqav2").test_items()[0]

    counts = [protocol.demo_count(_cfg(s, p)) for s in (0, 4) for p in ("official", "openflamingo")]
    demos = protocol.TextOnly(DemoSampler(pool, protocol.demo_count(_cfg(0, "openflamingo")), 42, 0))(item)

    assert counts == [0, 2, 4, 4]
    assert len(demos) == 2 and all(d.image_path == "" and d.question and d.answer for d in demos)
    assert [protocol.text_demos(_cfg(s, "openflamingo")) for s in (0, 4)] == [2, 0]


def test_the_demo_answer_is_the_majority_or_the_first_annotators() -> None:
    majority = {it.id: it.answer for it in dataset("vizwiz").demo_pool()}
    first = {it.id: it for it in dataset("vizwiz", ("dataset.demo_answer=first",)).demo_pool()}

    assert all(first[i].answer == first[i].references[0] for i in first)
    assert any(first[i].answer != majority[i] for i in first)
    with pytest.raises(UserError, match="dataset.demo_answer='last'"):
        dataset("vizwiz", ("dataset.demo_answer=last",))


def test_vizwiz_predictions_name_the_image_as_the_challenge_wants() -> None:
    ds = dataset("vizwiz")
    items = ds.test_items()[:3]

    records = prediction_records(ds, {it.id: "blue" for it in items})

    assert records == [{"image": Path(it.image_path).name, "answer": "blue"} for it in items]
    assert records[0]["image"] == "VizWiz_val_00000000.jpg"


@pytest.mark.parametrize(("name", "overrides"), [
    ("vizwiz", ("dataset.test_annotations=vizwiz/Annotations/test.json", "dataset.test_image_dir=vizwiz/test")),
    ("textvqa", ("dataset.test_file=textvqa/TextVQA_0.5.1_test.json", "dataset.test_image_dir=textvqa/test_images")),
])
def test_a_test_split_without_answers_scores_none(name: str, overrides: tuple[str, ...]) -> None:
    ds = dataset(name, overrides)
    items = ds.test_items()

    score = ds.score({it.id: "x" for it in items}, items)

    assert len(items) == 20 and all(Path(it.image_path).is_file() for it in items)
    assert score.value is None and score.per_item is None


@pytest.mark.parametrize(("name", "key", "needle"), [
    ("vizwiz", "dataset.test_annotations=vizwiz/Annotations/none.json", "dataset.test_annotations: file not found"),
    ("vizwiz", "dataset.test_annotations=textvqa/TextVQA_0.5.1_val.json", "not a VizWiz annotations file"),
    ("textvqa", "dataset.test_file=vizwiz/Annotations/val.json", "not a TextVQA file"),
    ("textvqa", "dataset.demo_file=textvqa/TextVQA_0.5.1_test.json", "demos need them"),
    ("flickr30k", "dataset.karpathy_file=coco/dataset_coco.json", "image entry 20 of .* a numeric file name"),
    ("flickr30k", "dataset.karpathy_file=vizwiz/Annotations/val.json", "not a Karpathy split file (dataset_flickr30k"),
    ("vizwiz", "dataset.vqa_variant=vqa2017", "choose official, vqa2016, openflamingo, textvqa"),
])
def test_a_wrong_file_or_key_names_it(name: str, key: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle.replace("(", r"\(")) as e:
        dataset(name, (key,))

    assert "\n" not in str(e.value)


def test_a_file_answered_only_in_part_is_refused(tmp_path: Path) -> None:
    entries = json.loads((SAMPLE / "vizwiz" / "Annotations" / "val.json").read_text())
    del entries[3]["answers"]
    (tmp_path / "val.json").write_text(json.dumps(entries))

    with pytest.raises(UserError, match="human answers for 39 of 40 questions"):
        dataset("vizwiz", (f"dataset.test_annotations={tmp_path / 'val.json'}",))


def test_a_missing_image_stops_the_job_in_one_line_before_generation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE / "textvqa", data / "textvqa")
    next((data / "textvqa" / "train_images").glob("*.jpg")).unlink()

    proc = cli(["evalrunner", "dataset=textvqa", f"data_root={data}", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(lines) == 1 and "image(s) not found" in lines[0] and "textvqa" in lines[0]
    assert not (tmp_path / "run" / "partial").exists()


def test_okvqa_without_nltk_data_stops_before_loading_with_the_downloader_command(monkeypatch: pytest.MonkeyPatch,
                                                                                   tmp_path: Path) -> None:
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])

    with pytest.raises(UserError, match="python -m nltk.downloader punkt_tab"):
        dataset("okvqa")


@pytest.mark.usefixtures("nltk_data")
def test_okvqa_stems_each_prediction_after_the_vqa_cut() -> None:
    from evalrunner.metrics.okvqa_stem import stem

    ds = dataset("okvqa")

    assert ds.postprocess("running dogs, cats Question: why") == stem("running dogs") != "running dogs"


def test_hf_prompts_show_text_only_demos_without_an_image(tmp_path: Path) -> None:
    from helpers import tiny_hf

    from evalrunner import tasks
    from evalrunner.models.hf import HFModel

    cfg = compose_cfg(["dataset=vqav2", "model=hf", f"model.path={tiny_hf.build_llava(tmp_path, chat=False)}"])
    model = HFModel(cfg.model, __import__("torch").device("cpu"), 3)
    requests = tasks.Requester(dataset("vqav2"), model, cfg.dataset)
    query = dataset("vqav2").test_items()[0]
    demos = protocol.TextOnly(lambda _: dataset("vqav2").demo_pool()[:2])(query)

    prompt = model.render(requests.request(query, demos).prompt)
    batch = requests.prepare([query], [demos]).inputs

    assert prompt.count(model.image_token) == 1 and prompt.endswith(f"<image>Question:{query.question} Short answer:")
    assert prompt.startswith(f"Question:{demos[0].question} Short answer:{demos[0].answer}\n")
    assert batch["pixel_values"].shape[0] == 1


def _job(run: Path) -> tuple[dict, list[dict], dict]:
    result = json.loads((run / "result.json").read_text())
    preds = json.loads((run / "predictions.json").read_text())
    item_scores = json.loads((run / "item_scores.json").read_text()) if (run / "item_scores.json").exists() else {}
    return result, preds, item_scores


@pytest.mark.slow
@pytest.mark.usefixtures("nltk_data")  # sets NLTK_DATA, which the job's process inherits
def test_the_issues_sweep_runs_on_the_bundled_sample(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"

    proc = cli(["evalrunner", "-m", "dataset=okvqa,vizwiz,textvqa,flickr30k", "shots=0,4",
                f"hydra.sweep.dir={sweep}"], tmp_path)

    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((sweep / "results.json").read_text())
    assert sorted(results) == sorted(NEW) and all([r["shots"] for r in rows] == [0, 4] for rows in results.values())
    keys = {"okvqa": {"question_id", "answer"}, "vizwiz": {"image", "answer"}, "textvqa": {"question_id", "answer"},
            "flickr30k": {"image_id", "caption"}}
    for name in NEW:
        result, preds, _ = _job(sweep / f"dataset={name},shots=4")
        assert set(preds[0]) == keys[name] and len(preds) == result["num_samples"]
        assert result["protocol"] == "official" and result["sample_data"] is True
        assert result.get("vqa_variant") == {"okvqa": "official", "vizwiz": "official", "textvqa": "textvqa"}.get(name)


@pytest.mark.slow
@pytest.mark.usefixtures("nltk_data")
def test_official_layouts_under_data_root_score_as_the_reference_implementations(official: Path,
                                                                                   tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"

    proc = cli(["evalrunner", "-m", "dataset=okvqa,vizwiz,textvqa,flickr30k", "shots=0,2",
                f"data_root={official}", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${dataset.name}-${shots}"],
               tmp_path)

    assert proc.returncode == 0, proc.stderr[-3000:]
    textvqa = {e["question_id"]: e["answers"] for e in
               json.loads((official / "textvqa" / "TextVQA_0.5.1_val.json").read_text())["data"]}
    vizwiz = [[a["answer"] for a in e["answers"]] for e in
              json.loads((official / "vizwiz" / "Annotations" / "val.json").read_text())]
    okvqa = {a["question_id"]: [x["answer"] for x in a["answers"]] for a in
             json.loads((official / "okvqa" / "mscoco_val2014_annotations.json").read_text())["annotations"]}
    flickr = {int(i["filename"][:-4]): [s["raw"] for s in i["sentences"]] for i in
              json.loads((official / "flickr30k" / "dataset_flickr30k.json").read_text())["images"]}
    for shots in (0, 2):
        result, preds, per_item = _job(sweep / f"textvqa-{shots}")
        overall, theirs = oracles.m4c_textvqa({p["question_id"]: p["answer"] for p in preds}, textvqa)
        assert list(per_item.values()) == [100 * s for s in theirs]
        assert result["score"] == 100 * sum(theirs) / len(theirs) == pytest.approx(100 * overall, rel=1e-15)

        result, preds, per_item = _job(sweep / f"vizwiz-{shots}")
        theirs = oracles.axlearn_scores(dict(enumerate(p["answer"] for p in preds)), dict(enumerate(vizwiz)))
        assert [p["image"] for p in preds] == [f"VizWiz_val_{k:08d}.jpg" for k in range(len(vizwiz))]
        assert list(per_item.values()) == [100 * s for s in theirs]
        assert result["score"] == 100 * sum(theirs) / len(theirs)

        result, preds, per_item = _job(sweep / f"okvqa-{shots}")
        theirs = oracles.axlearn_scores({p["question_id"]: p["answer"] for p in preds}, okvqa)
        assert result["score"] == 100 * sum(theirs) / len(theirs)

        result, preds, _ = _job(sweep / f"flickr30k-{shots}")
        theirs, _ = oracles.pycocoevalcap_cider({p["image_id"]: p["caption"] for p in preds}, flickr)
        assert result["score"] == pytest.approx(theirs, rel=1e-12)
        assert result["sample_data"] is False
    assert _job(sweep / "textvqa-2")[0]["score"] > 0 and _job(sweep / "vizwiz-2")[0]["score"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(("name", "overrides", "keys"), [
    ("vqav2", ["dataset.test_questions=vqav2/v2_OpenEnded_mscoco_test-dev2015_questions.json",
               "dataset.test_annotations=null",
               "dataset.test_images='coco/test2015/COCO_test2015_{image_id:012d}.jpg'"],
     {"question_id", "answer"}),
    ("vizwiz", ["dataset.test_annotations=vizwiz/Annotations/test.json", "dataset.test_image_dir=vizwiz/test"],
     {"image", "answer"}),
    ("textvqa", ["dataset.test_file=textvqa/TextVQA_0.5.1_test.json", "dataset.test_image_dir=textvqa/test_images"],
     {"question_id", "answer"}),
])
def test_a_test_split_job_writes_the_submission_and_the_collector_lists_it(official: Path, tmp_path: Path, name: str,
                                                                            overrides: list[str], keys: set) -> None:
    sweep = tmp_path / "sweep"

    proc = cli(["evalrunner", "-m", f"dataset={name}", "shots=2", "protocol=openflamingo", *overrides,
                f"data_root={official}", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=job"], tmp_path)

    assert proc.returncode == 0, proc.stderr[-3000:]
    result, preds, per_item = _job(sweep / "job")
    assert result["score"] is None and result["protocol"] == "openflamingo" and per_item == {}
    assert len(preds) == 30 and set(preds[0]) == keys
    assert "SUBMISSION" in proc.stdout and "FAILED" not in proc.stdout


def test_items_are_typed_as_the_job_expects() -> None:
    items = [*dataset("vizwiz").test_items(), *dataset("textvqa").test_items(), *dataset("flickr30k").test_items()]

    assert all(isinstance(it, Item) and isinstance(it.id, int) and isinstance(it.image_id, int) for it in items)
