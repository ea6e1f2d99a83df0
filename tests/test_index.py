"""The dataset index: the same items as a plain parse, rebuilt when a source changes or the file is corrupt, built once
by processes that start together, and jobs whose outputs don't depend on whether it existed."""

import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SAMPLE, cli, compose_cfg, official_layouts
from helpers.nltk_resources import nltk_data  # noqa: F401  (fixture)

from evalrunner import cache
from evalrunner.datasets import index
from evalrunner.demos import query_set, select_test_items
from evalrunner.registry import lookup

# Every dataset in conf/dataset/: a new one is tested without editing a list here.
ALL = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "dataset").glob("*.yaml"))
OFFICIAL = [  # the synthetic official layouts, with the spellings and splits the sample lacks
    ("vqav2", ()),
    ("vqav2", ("dataset.test_questions=vqav2/v2_OpenEnded_mscoco_test-dev2015_questions.json",
               "dataset.test_annotations=null")),
    ("okvqa", ()), ("vizwiz", ()), ("textvqa", ()), ("flickr30k", ()),
    ("vizwiz", ("dataset.test_annotations=vizwiz/Annotations/test.json", "dataset.test_image_dir=vizwiz/test")),
    ("textvqa", ("dataset.test_file=textvqa/TextVQA_0.5.1_test.json", "dataset.test_image_dir=textvqa/test_images")),
    ("okvqa", ("dataset.demo_answer=first",)),
]


def _load(name: str, root: Path, index_dir: Path | None,  # type: ignore[no-untyped-def]
          overrides: tuple[str, ...] = ()):
    cfg = compose_cfg([f"dataset={name}", *overrides])
    return lookup("dataset", name)(cfg.dataset, root, index_dir)


def _assert_same(name: str, root: Path, index_dir: Path, overrides: tuple[str, ...] = ()) -> None:
    plain, indexed = _load(name, root, None, overrides), _load(name, root, index_dir, overrides)
    for a, b in ((plain.test_items(), indexed.test_items()), (plain.demo_pool(), indexed.demo_pool())):
        assert isinstance(b, index.Items) and len(a) == len(b)
        assert list(b) == a and b[-1] == a[-1] and b[1:4] == a[1:4]
        assert index.image_ids(b) == [it.image_id for it in a]
        assert index.image_paths(b) == [it.image_path for it in a]


@pytest.mark.usefixtures("nltk_data")
@pytest.mark.parametrize("name", ALL)
def test_the_index_gives_the_items_of_a_plain_parse_on_the_sample(tmp_path: Path, name: str) -> None:
    _assert_same(name, SAMPLE, tmp_path / "index")


@pytest.mark.usefixtures("nltk_data")
def test_the_index_gives_the_items_of_a_plain_parse_on_the_official_layouts(tmp_path: Path) -> None:
    root = official_layouts.build(tmp_path / "data", per_split={"test": 12, "train": 15})

    for name, overrides in OFFICIAL:
        _assert_same(name, root, tmp_path / "index", overrides)


def test_strings_the_encoder_could_trip_on_come_back_exactly(tmp_path: Path) -> None:
    from evalrunner.datasets.base import Item

    items = [Item(id=-3, image_id=2**64 - 1, image_path="", question="lone \ud800 surrogate", answer="é\0",
                  references=()),
             Item(id=7, image_id=0, image_path="a/b.jpg", question="", answer="", references=("", "x", "x"))]
    index.write(tmp_path / "x.idx", index.encode((items, [])))

    test, demos = index.read(tmp_path / "x.idx")

    assert list(test) == items and list(demos) == []
    assert list(pickle.loads(pickle.dumps(test))) == items


def _vizwiz(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "vizwiz" / "Annotations").mkdir(parents=True)
    for split in ("val", "train"):
        (root / "vizwiz" / "Annotations" / f"{split}.json").write_bytes(
            (SAMPLE / "vizwiz" / "Annotations" / f"{split}.json").read_bytes())
    return root


def test_a_touched_or_resized_source_rebuilds_the_index_and_prunes_the_old_one(tmp_path: Path) -> None:
    root, idx = _vizwiz(tmp_path), tmp_path / "index"
    source = root / "vizwiz" / "Annotations" / "val.json"
    _load("vizwiz", root, idx)
    first = sorted(idx.glob("*.idx"))

    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    _load("vizwiz", root, idx)
    touched = sorted(idx.glob("*.idx"))
    source.write_text(source.read_text().replace('"question": "', '"question": "Now, ', 1))
    changed = _load("vizwiz", root, idx)

    assert len(first) == len(touched) == 1 and first != touched  # a new key, and the old file is gone
    assert changed.test_items()[0].question.startswith("Now, ")
    assert changed.test_items()[0] == _load("vizwiz", root, None).test_items()[0]


@pytest.mark.parametrize("how", ["cp -p", "rsync -a", "tar x"])
def test_a_rewrite_keeping_size_and_mtime_is_read_fresh_not_through_the_stale_index(tmp_path: Path, how: str) -> None:
    root, idx = _vizwiz(tmp_path), tmp_path / "index"
    source = root / "vizwiz" / "Annotations" / "val.json"
    old = _load("vizwiz", root, idx)
    text = source.read_text()
    at = text.index('"question": "') + len('"question": "')
    fixed = text[:at] + "X" + text[at + 1 :]  # one ASCII letter for another: the same size
    assert len(fixed.encode()) == len(text.encode()) and fixed != text and text[at] != "X"
    st = source.stat()
    corrected = tmp_path / "corrected.json"
    corrected.write_text(fixed)
    if how == "cp -p":  # onto the same inode: only ctime tells
        source.write_text(fixed)
    else:  # rsync -a and tar x write a new file, then set the old mtime
        os.replace(corrected, source)
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (source.stat().st_size, source.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)

    new = _load("vizwiz", root, idx)

    assert new.test_items()[0].question.startswith("X") and not old.test_items()[0].question.startswith("X")
    assert new.data_digest != old.data_digest and new.data_digest == _load("vizwiz", root, None).data_digest


def test_a_corrupt_index_is_detected_and_rebuilt(tmp_path: Path) -> None:
    idx = tmp_path / "index"
    expected = list(_load("vqav2", SAMPLE, idx).demo_pool())
    (path,) = idx.glob("*.idx")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not cache.valid(path)

    rebuilt = _load("vqav2", SAMPLE, idx)

    assert cache.valid(path) and list(rebuilt.demo_pool()) == expected


def test_an_unusable_index_dir_falls_back_to_a_plain_parse(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")

    ds = _load("coco", SAMPLE, tmp_path / "file")

    assert isinstance(ds.test_items(), list) and ds.test_items() == _load("coco", SAMPLE, None).test_items()


def test_a_missing_source_is_the_parsers_one_line_error(tmp_path: Path) -> None:
    from evalrunner.errors import UserError

    with pytest.raises(UserError, match="dataset.test_annotations: file not found"):
        _load("vizwiz", SAMPLE, tmp_path / "index", ("dataset.test_annotations=vizwiz/none.json",))

    assert not list((tmp_path / "index").glob("*.idx"))


def test_selection_on_the_index_picks_the_items_it_picks_on_a_list(tmp_path: Path) -> None:
    pool = _load("vqav2", SAMPLE, tmp_path / "index").demo_pool()
    listed = list(pool)

    assert query_set(pool, 100, 42, 3) == random.Random("42/3/query-set").sample(listed, 100)
    assert select_test_items(pool, 50, 7) == select_test_items(listed, 50, 7)


_BUILD = """
import logging, sys
from pathlib import Path
from hydra import compose, initialize_config_module
from evalrunner.registry import lookup
import evalrunner.datasets
logging.basicConfig(level=logging.INFO)
with initialize_config_module(config_module="evalrunner.conf", version_base="1.3"):
    cfg = compose(config_name="config", overrides=["dataset=coco"])
ds = lookup("dataset", "coco")(cfg.dataset, Path(sys.argv[1]), Path(sys.argv[2]))
print(len(ds.test_items()), len(ds.demo_pool()), ds.demo_pool()[-1].image_path)
"""


@pytest.mark.slow  # two real processes
def test_two_processes_started_together_build_the_index_once(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD, str(SAMPLE), str(tmp_path / "index")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]

    outs = [p.communicate(timeout=120) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0] == outs[1][0] and outs[0][0].split()[:2] == ["80", "400"]
    assert sum(err.count("dataset index of coco built") for _, err in outs) == 1


@pytest.mark.slow  # three real jobs
def test_job_outputs_are_byte_identical_with_and_without_an_existing_index(tmp_path: Path) -> None:
    (tmp_path / "no-index").write_text("a file, so no index can be built: the job parses in memory")
    args = ["evalrunner", "dataset=vqav2", "num_samples=30", "shots=2", "query_set_size=64"]
    runs = {}
    for name, index_dir in (("plain", tmp_path / "no-index"), ("builds", tmp_path / "index"),
                            ("maps", tmp_path / "index")):
        proc = cli([*args, f"index_dir={index_dir}", f"hydra.run.dir={tmp_path / name}"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert ("parsing vqav2 in memory instead" in proc.stdout + proc.stderr) == (name == "plain")
        runs[name] = [(tmp_path / name / f).read_bytes() for f in ("predictions.json", "demos.json",
                                                                     "item_scores.json")]

    assert runs["plain"] == runs["builds"] == runs["maps"]
