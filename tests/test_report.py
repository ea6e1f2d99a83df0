"""The report on real sweeps of the sample data: intervals, plots, the HTML page, and the diff of two sweeps."""

import base64
import io
import json
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import cli
from PIL import Image

from evalrunner.collect import collect
from evalrunner.collect import report as table
from evalrunner.report import bootstrap, intervals
from evalrunner.report.__main__ import main, report
from evalrunner.report.bootstrap import ItemMeans, RocAuc, replicates

SHIFTED = 4  # the shots of the cells the synthetic shift moves


def _sweep(root: Path, *overrides: str) -> Path:
    proc = cli(["evalrunner", "-m", *overrides, f"hydra.sweep.dir={root}"], root.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root


@pytest.fixture(scope="module")
def vqa_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sweep(tmp_path_factory.mktemp("vqa") / "sweep", "dataset=vqav2", "shots=0,4", "trial=0,1,2")


def _copy(sweep: Path, to: Path) -> Path:
    return Path(shutil.copytree(sweep, to))


def _cells(sweep: Path) -> dict[int, dict]:
    return {c["shots"]: c for c in json.loads((sweep / "report.json").read_text())["cells"]}


def _shift(sweep: Path, shots: int) -> float:
    """Turn every fifth wrong answer of the shots' jobs right, in item_scores.json and result.json alike."""
    shift = []
    for job in sorted(sweep.glob(f"*shots={shots},*")):
        items = json.loads((job / "item_scores.json").read_text())
        wrong = sorted(i for i, s in items.items() if s == 0)[::5]
        items.update({i: 100.0 for i in wrong})
        (job / "item_scores.json").write_text(json.dumps(items))
        result = json.loads((job / "result.json").read_text())
        new = float(np.mean(list(items.values())))
        shift.append(new - result["score"])
        (job / "result.json").write_text(json.dumps({**result, "score": new}))
    return float(np.mean(shift))


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.images += [v or "" for k, v in attrs if tag == "img" and k == "src"]
        self.tables += tag == "table"


@pytest.fixture(scope="module")
def coco_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sweep(tmp_path_factory.mktemp("coco") / "sweep", "dataset=coco", "shots=0,4")


@pytest.mark.slow
@pytest.mark.parametrize("sweep", ["vqa_sweep", "coco_sweep"])
def test_a_jobs_score_is_the_mean_of_its_item_scores(sweep: str, request: pytest.FixtureRequest) -> None:
    jobs = sorted(request.getfixturevalue(sweep).glob("dataset=*"))

    for job in jobs:
        items = json.loads((job / "item_scores.json").read_text())
        result = json.loads((job / "result.json").read_text())
        assert len(items) == result["num_samples"] == len(json.loads((job / "predictions.json").read_text()))
        assert np.mean(list(items.values())) == pytest.approx(result["score"], rel=1e-12, abs=1e-12)
    assert len(jobs) == {"vqa_sweep": 6, "coco_sweep": 2}[sweep]


@pytest.mark.slow
def test_the_report_shows_the_plot_and_an_interval_around_each_mean(vqa_sweep: Path, tmp_path: Path) -> None:
    sweep = _copy(vqa_sweep, tmp_path / "a")

    assert main([str(sweep)]) == 0

    results = {r["shots"]: r for r in json.loads((sweep / "results.json").read_text())["vqav2"]}
    for shots, cell in _cells(sweep).items():
        lo, hi = cell["interval"]
        assert lo < cell["mean"] < hi and hi - lo < 20
        assert (cell["trials"], cell["mean"], cell["stddev"]) == tuple(results[shots][k] for k in
                                                                      ("trials", "mean", "stddev"))
        assert cell["items"] == 240
    png = (sweep / "scores_vs_shots.png").read_bytes()
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size[0] > 200 and image.size[1] > 200
    assert ET.fromstring((sweep / "scores_vs_shots.svg").read_bytes()).tag.endswith("svg")
    page = _Page()
    page.feed((sweep / "report.html").read_text())
    assert page.images == ["data:image/png;base64," + base64.b64encode(png).decode()] and page.tables == 1
    assert "![score against shots](scores_vs_shots.png)" in (sweep / "report.md").read_text()


@pytest.mark.slow
def test_a_rerun_rewrites_nothing(vqa_sweep: Path, tmp_path: Path) -> None:
    sweep = _copy(vqa_sweep, tmp_path / "a")
    first = report(sweep)
    stamps = {p: p.stat().st_mtime_ns for p in sweep.iterdir() if p.is_file()}

    again = report(sweep)

    assert len(first) == 5 and again == []
    assert {p: p.stat().st_mtime_ns for p in sweep.iterdir() if p.is_file()} == stamps


@pytest.mark.slow
def test_a_partly_finished_sweep_is_reported_with_its_unfinished_jobs(vqa_sweep: Path, tmp_path: Path) -> None:
    full, partial = _copy(vqa_sweep, tmp_path / "full"), _copy(vqa_sweep, tmp_path / "partial")
    (partial / "dataset=vqav2,shots=4,trial=2" / "result.json").unlink()

    report(full)
    report(partial)

    doc = json.loads((partial / "report.json").read_text())
    assert [len(c["trials"]) for c in doc["cells"]] == [3, 2]
    assert [p.split(":")[0] for p in doc["problems"]] == ["UNFINISHED  dataset=vqav2 shots=4 trial=2"]
    assert _cells(partial)[0]["interval"] == _cells(full)[0]["interval"]  # a cell's draws are its own


@pytest.mark.slow
@pytest.mark.parametrize("damaged", ["result.json", "error.json"])
def test_a_damaged_job_file_is_listed_and_the_others_are_reported(vqa_sweep: Path, tmp_path: Path, damaged: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    sweep = _copy(vqa_sweep, tmp_path / "sweep")
    job = sweep / "dataset=vqav2,shots=4,trial=2"
    (job / "result.json").unlink()
    (job / damaged).write_bytes(b'{"score": 4\x00\x00')

    status = main([str(sweep)])

    out = capsys.readouterr().out
    doc = json.loads((sweep / "report.json").read_text())
    assert status == 1 and "Traceback" not in out
    assert [len(c["trials"]) for c in doc["cells"]] == [3, 2]
    [problem] = doc["problems"]
    assert problem.startswith("DAMAGED  dataset=vqav2 shots=4 trial=2: " + damaged) and problem in out
    assert problem in (sweep / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("content", [b'{"1": 0.5, "2": \x00', b'[1, 2]', b'{"x": 1}'])
def test_a_damaged_item_scores_file_leaves_its_cell_without_an_interval_and_the_rest_reported(
        vqa_sweep: Path, tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = _copy(vqa_sweep, tmp_path / "sweep")
    damaged = sweep / "dataset=vqav2,shots=4,trial=1" / "item_scores.json"
    damaged.write_bytes(content)

    status = main([str(sweep)])

    out = capsys.readouterr().out
    doc = json.loads((sweep / "report.json").read_text())
    assert status == 1 and "Traceback" not in out
    [problem] = doc["problems"]
    assert problem.startswith("DAMAGED  ") and str(damaged) in problem and problem in out
    by_shots = {c["shots"]: c for c in doc["cells"]}
    assert by_shots[4]["interval"] is None and len(by_shots[4]["trials"]) == 3
    assert all(c["interval"] is not None for shots, c in by_shots.items() if shots != 4)


@pytest.mark.slow
def test_long_bootstraps_show_their_progress(vqa_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    sweep = _copy(vqa_sweep, tmp_path / "a")
    report(sweep, resamples=100)
    assert "bootstrap" not in capsys.readouterr().err

    monkeypatch.setattr(intervals, "PROGRESS_WORK", 0)
    report(sweep, resamples=100)

    err = capsys.readouterr().err
    assert "bootstrap: 100%" in err and "200/200" in err  # two cells of 100 resamples


@pytest.mark.slow
def test_the_collectors_table_prints_the_reports_interval(vqa_sweep: Path, tmp_path: Path) -> None:
    sweep = _copy(vqa_sweep, tmp_path / "a")
    report(sweep)

    text = table(collect(sweep))

    for shots, cell in _cells(sweep).items():
        lo, hi = cell["interval"]
        assert any(line.split()[:2] == ["vqav2", str(shots)] and f"[{lo:.2f}, {hi:.2f}]" in line
                   for line in text.splitlines())


@pytest.mark.slow
def test_intervals_shrink_as_items_grow(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path / "sweep", "dataset=vqav2", "shots=0", "num_samples=60,240")

    report(sweep, resamples=2000)

    cells = {c["group"]: c for c in json.loads((sweep / "report.json").read_text())["cells"]}
    width = {g: c["interval"][1] - c["interval"][0] for g, c in cells.items()}
    assert set(width) == {"num_samples=60", "num_samples=240"}
    assert width["num_samples=240"] < 0.75 * width["num_samples=60"]


@pytest.mark.slow
def test_a_sweep_against_itself_differs_by_exactly_zero_with_zero_width_intervals(vqa_sweep: Path,
                                                                                 tmp_path: Path) -> None:
    sweep, other = _copy(vqa_sweep, tmp_path / "a"), _copy(vqa_sweep, tmp_path / "b")
    (other / "results.json").unlink()

    report(sweep, other)

    diff = json.loads((sweep / "report.json").read_text())["diff"]["cells"]
    assert [(d["shots"], d["difference"], d["interval"], d["excludes_zero"]) for d in diff] == [
        (0, 0.0, [0.0, 0.0], False), (4, 0.0, [0.0, 0.0], False)]
    assert sorted(p.name for p in other.iterdir() if p.is_file()) == ["multirun.yaml"]  # the other is only read


@pytest.mark.slow
def test_a_known_shift_between_two_sweeps_is_detected(vqa_sweep: Path, tmp_path: Path) -> None:
    base, better = _copy(vqa_sweep, tmp_path / "base"), _copy(vqa_sweep, tmp_path / "better")
    shift = _shift(better, SHIFTED)

    report(better, base)

    diff = {d["shots"]: d for d in json.loads((better / "report.json").read_text())["diff"]["cells"]}
    moved = diff[SHIFTED]
    assert moved["difference"] == pytest.approx(shift) and shift > 5
    assert 0 < moved["interval"][0] < shift < moved["interval"][1] and moved["excludes_zero"]
    assert diff[0]["difference"] == 0 and not diff[0]["excludes_zero"]
    assert "**yes**" in (better / "report.md").read_text()


@pytest.mark.slow
def test_cells_of_another_metric_variant_are_refused_with_the_reason(vqa_sweep: Path, tmp_path: Path) -> None:
    base, other = _copy(vqa_sweep, tmp_path / "base"), _copy(vqa_sweep, tmp_path / "other")
    for job in other.glob("*shots=0,*"):
        result = json.loads((job / "result.json").read_text())
        (job / "result.json").write_text(json.dumps({**result, "vqa_variant": "vqa2016"}))

    report(base, other)

    diff = {d["shots"]: d for d in json.loads((base / "report.json").read_text())["diff"]["cells"]}
    assert diff[0]["interval"] is None
    assert diff[0]["refused"] == "metric variant differs (vqa_variant: \"official\" vs \"vqa2016\")"
    assert diff[4]["refused"] is None
    assert "shots=0 (nearest vs nearest): not compared, metric variant differs" in (base / "report.md").read_text()


def test_a_folder_that_is_not_a_sweep_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "above" / "sweep" / "job" / ".hydra").mkdir(parents=True)  # a folder that holds a sweep
    before = sorted(tmp_path.rglob("*"))

    codes = [main([str(tmp_path / name)]) for name in ("missing", "empty", "above")]

    err = capsys.readouterr().err.strip().splitlines()
    assert codes == [2, 2, 2] and len(err) == 3 and all(line.startswith("error: SWEEP_DIR: ") for line in err)
    assert "no multirun.yaml" in err[2]
    assert sorted(tmp_path.rglob("*")) == before


def _pairwise_auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y], p[~y]
    return 100 * ((pos[:, None] > neg).sum() + 0.5 * (pos[:, None] == neg).sum()) / (len(pos) * len(neg))


def test_resampled_roc_auc_equals_a_pairwise_count_on_the_same_items() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        n, trials = int(rng.integers(2, 30)), int(rng.integers(1, 4))
        proba, label = np.round(rng.random((trials, n)), 1), rng.random(n) < 0.4  # rounded: many ties
        stat = RocAuc.from_rows([{i: (float(proba[t, i]), bool(label[i])) for i in range(n)} for t in range(trials)])
        idx = rng.integers(0, n, size=(4, n))

        got = stat.resampled(idx)

        for row, value in zip(idx, got):
            defined = 0 < label[row].sum() < n
            expected = np.mean([_pairwise_auc(p[row], label[row]) for p in proba]) if defined else np.nan
            assert value == pytest.approx(expected, rel=1e-12, nan_ok=True)


def test_items_a_trial_lacks_count_only_in_the_trials_that_hold_them() -> None:
    rng = np.random.default_rng(1)
    trials = [{i: float(rng.integers(0, 4) * 30) for i in range(50) if (i + t) % 7} for t in range(3)]
    stat = ItemMeans.from_maps(trials)
    idx = rng.integers(0, len(stat.ids), size=(20, len(stat.ids)))

    got = stat.resampled(idx)

    for row, value in zip(idx, got):
        ids = stat.ids[row]
        expected = np.mean([np.mean([t[i] for i in ids if i in t]) for t in trials])
        assert value == pytest.approx(expected, rel=1e-12)


def test_chunking_does_not_change_the_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    scores = np.random.default_rng(2).random((3, 1000))
    stat = ItemMeans(np.arange(1000), scores, np.ones_like(scores, dtype=bool))
    whole = replicates([stat], 50, np.random.default_rng(5))

    monkeypatch.setattr(bootstrap, "CHUNK", 3000)
    chunked = replicates([stat], 50, np.random.default_rng(5))

    assert np.array_equal(whole, chunked)


def test_roc_auc_on_every_item_once_is_the_metrics_roc_auc() -> None:
    from evalrunner.metrics.classification import roc_auc

    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(2, 60))
        label = np.r_[True, False, rng.random(n - 2) < 0.5]
        proba = np.round(rng.random(n), 2)
        stat = RocAuc(np.arange(n), proba[None], label[None], np.ones((1, n), dtype=bool))

        got = stat.resampled(np.arange(n)[None])[0]

        assert got == pytest.approx(100 * roc_auc(proba.tolist(), label.astype(int).tolist()), rel=1e-12)


@pytest.mark.slow
def test_roc_auc_cells_resample_predictions_against_the_test_files_labels(tmp_path: Path) -> None:
    from evalrunner.report.cells import statistic, sweep_cells

    sweep = _sweep(tmp_path / "sweep", "dataset=hatefulmemes", "shots=4", "trial=0,1")
    (cell,), _ = sweep_cells(sweep)
    stat, kind = statistic(cell)  # type: ignore[misc]

    report(sweep, sweep)

    doc = json.loads((sweep / "report.json").read_text())
    (reported,), (diff,) = doc["cells"], doc["diff"]["cells"]
    whole = stat.resampled(np.arange(len(stat.ids))[None])[0]  # every item once: the mean of the jobs' scores
    assert kind == "auc" and whole == pytest.approx(np.mean(cell.trials), rel=1e-12)
    assert all((d / "report_data.json").is_file() for d in cell.jobs)  # the labels: the report loads no dataset
    assert reported["interval"][0] < reported["mean"] < reported["interval"][1]
    assert (diff["difference"], diff["interval"]) == (0.0, [0.0, 0.0])
