"""Full-benchmark scale: a job's load phase and peak memory at VQAv2 and COCO Karpathy scale, with and without the
dataset index (evalrunner/datasets/index.py).

Run as `python benchmarks/scale.py [--val-questions 214354]` (`--smoke`: ~2,000 questions, for CI). It generates
files in the official layout once under /tmp/evalrunner-scale/<size>/ and reuses them on later runs:
- VQAv2: val2014 and train2014 questions and annotations, 10 answers each (214,354 and 443,757 questions at full
  size, 550 MB of JSON); COCO Karpathy: dataset_coco.json with 123,287 images x 5 captions (scaled alike).
- images: one symlink per COCO image, to one of a few sample JPEGs.
It prints, per dataset, the load time and peak RSS of:
- a plain parse (the dataset built without an index, in a child process);
- the first job, which builds the index (`python -m evalrunner ... num_samples=1000 shots=4`, in a child process:
  result.json's timings.load and the child's ru_maxrss);
- a later job, which memory-maps it;
and a sample-data job's, the reference for the memory goal. With --smoke it also checks that the index gives the
same items as a plain parse, item for item, and exits 1 if not.
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import model_reuse  # benchmarks/model_reuse.py: the 6-job model=hf sweep with and without model reuse

VAL_QUESTIONS, TRAIN_QUESTIONS = 214_354, 443_757
VAL_IMAGES, TRAIN_IMAGES = 40_504, 82_783  # COCO 2014: 123,287 images, the Karpathy split's
KARPATHY_SPLITS = (("test", 5000), ("val", 5000), ("restval", 30_504))  # of val2014; train2014 is all "train"
SAMPLE = Path(__file__).resolve().parents[1] / "evalrunner" / "sample_data"
WORDS = ("man", "dog", "cat", "table", "car", "street", "pizza", "bus", "train", "woman", "shirt", "sign", "tree",
         "horse", "plate", "boat", "kite", "clock", "bed", "giraffe", "elephant", "umbrella", "bench", "phone")
COLORS = ("red", "blue", "white", "black", "green", "yellow", "brown", "gray", "orange", "pink")
TEMPLATES = ("What color is the {w} {v}?", "How many {w}s are {v}?", "Is the {w} {v}?", "What is the {w} {v}?",
             "Where is the {w} {v}?", "Why is the {w} {v}?", "What kind of {w} is {v}?")
VERBS = ("here", "there", "on the left", "in the picture", "near the {w}", "holding the {w}", "next to the {w}")


def _stream(path: Path, head: dict[str, Any], field: str, entries: Any) -> None:
    """`{**head, field: [entries]}` written as it is generated, so 550 MB of JSON never sits in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(head)[:-1] + f', "{field}": [')
        _write_list(f, entries)
        f.write("]}")
    tmp.replace(path)


def _write_list(f: IO[str], entries: Any) -> None:
    block: list[str] = []
    sep = ""
    for e in entries:
        block.append(json.dumps(e))
        if len(block) == 10_000:
            f.write(sep + ",".join(block))
            block, sep = [], ","
    if block:
        f.write(sep + ",".join(block))


def _question(rng: random.Random) -> str:
    w = rng.choice(WORDS)
    return rng.choice(TEMPLATES).format(w=w, v=rng.choice(VERBS).format(w=rng.choice(WORDS)))


def _answers(rng: random.Random) -> list[str]:
    pool = [rng.choice(COLORS + WORDS + ("yes", "no", "2", "3", "1")) for _ in range(3)] + [f"{rng.choice(COLORS)} "
                                                                                           f"{rng.choice(WORDS)}"]
    return [rng.choice(pool) for _ in range(10)]


def _vqa(root: Path, subtype: str, images: range, n_questions: int, rng: random.Random) -> None:
    per_image = [n_questions // len(images) + (k < n_questions % len(images)) for k in range(len(images))]
    pairs = [(image_id, image_id * 1000 + j) for image_id, n in zip(images, per_image) for j in range(n)]
    head = {"info": {"description": "synthetic VQAv2-scale file"}, "license": {"name": "CC BY 4.0"},
            "data_subtype": subtype, "data_type": "mscoco"}
    questions = ({"image_id": i, "question": _question(rng), "question_id": q} for i, q in pairs)
    _stream(root / "vqav2" / f"v2_OpenEnded_mscoco_{subtype}_questions.json", {**head, "task_type": "Open-Ended"},
            "questions", questions)

    def annotation(image_id: int, qid: int) -> dict[str, Any]:
        humans = _answers(rng)
        return {"question_type": "what color is the", "multiple_choice_answer": humans[0],
                "answers": [{"answer": h, "answer_confidence": rng.choice(("yes", "maybe")), "answer_id": k + 1}
                            for k, h in enumerate(humans)],
                "image_id": image_id, "answer_type": "other", "question_id": qid}

    _stream(root / "vqav2" / f"v2_mscoco_{subtype}_annotations.json", head, "annotations",
            (annotation(i, q) for i, q in pairs))


def _karpathy(root: Path, val: range, train: range, rng: random.Random) -> None:
    splits = [s for s, n in KARPATHY_SPLITS for _ in range(max(1, n * len(val) // VAL_IMAGES))]
    splits += ["restval"] * (len(val) - len(splits))

    def image(imgid: int, subtype: str, cocoid: int, split: str) -> dict[str, Any]:
        raws = [f"A {rng.choice(COLORS)} {rng.choice(WORDS)} {rng.choice(VERBS).format(w=rng.choice(WORDS))}."
                for _ in range(5)]
        return {"filepath": subtype, "sentids": list(range(5 * imgid, 5 * imgid + 5)),
                "filename": f"COCO_{subtype}_{cocoid:012d}.jpg", "imgid": imgid, "split": split,
                "sentences": [{"tokens": r.lower().rstrip(".").split(), "raw": r, "imgid": imgid,
                               "sentid": 5 * imgid + j} for j, r in enumerate(raws)], "cocoid": cocoid}

    entries = [("val2014", c, s) for c, s in zip(val, splits)] + [("train2014", c, "train") for c in train]
    _stream(root / "coco" / "dataset_coco.json", {"dataset": "coco"}, "images",
            (image(k, sub, c, s) for k, (sub, c, s) in enumerate(entries)))


def generate(val_questions: int) -> Path:
    """The data root for this size, generated once (a `done` file marks a finished one)."""
    root = Path(os.environ.get("EVALRUNNER_SCALE_DIR", "/tmp/evalrunner-scale")) / str(val_questions)
    if (root / "done").is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    f = val_questions / VAL_QUESTIONS
    val = range(1, 1 + max(1, round(VAL_IMAGES * f)))
    train = range(val.stop, val.stop + max(1, round(TRAIN_IMAGES * f)))
    rng = random.Random(0)
    _vqa(root, "val2014", val, val_questions, rng)
    _vqa(root, "train2014", train, round(TRAIN_QUESTIONS * f), rng)
    _karpathy(root, val, train, rng)
    jpegs = sorted((SAMPLE / "coco" / "val2014").glob("*.jpg"))[:8]
    for subtype, ids in (("val2014", val), ("train2014", train)):
        folder = root / "coco" / subtype
        folder.mkdir(parents=True, exist_ok=True)
        for k, image_id in enumerate(ids):
            os.symlink(jpegs[k % len(jpegs)], folder / f"COCO_{subtype}_{image_id:012d}.jpg")
    (root / "done").write_text("")
    return root


def _compose(name: str, root: Path) -> Any:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="evalrunner.conf", version_base="1.3"):
        return compose(config_name="config", overrides=[f"dataset={name}", f"data_root={root}"])


def child_parse(name: str, root: Path, index_dir: str | None) -> None:
    """In a child process: the dataset loaded as JSON on stdout, through the index in `index_dir`, or with none by
    today's code (parse() with the cyclic collector on, as before the index: the reference)."""
    import contextlib

    from evalrunner.datasets import index
    from evalrunner.registry import lookup

    cfg = _compose(name, root)
    if index_dir is None:
        index._gc_paused = contextlib.nullcontext  # type: ignore[assignment]
    start = time.perf_counter()
    ds = lookup("dataset", name)(cfg.dataset, root, None if index_dir is None else Path(index_dir))
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "items": len(ds.test_items()) + len(ds.demo_pool())}))


def _measured(cmd: list[str]) -> tuple[str, float]:
    """stdout of `cmd` and its peak RSS in MB, from a wrapper process whose only child it is."""
    wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "sys.stderr.write(p.stderr); print(p.returncode); print(p.stdout, end=''); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    if lines[0] != "0":
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return "\n".join(lines[1:-1]), int(lines[-1]) / 1024


def plain_parse(name: str, root: Path) -> tuple[float, float]:
    """Load time and peak RSS of today's parse, without an index."""
    stdout, rss = _measured([sys.executable, __file__, "--child", name, str(root)])
    return json.loads(stdout.splitlines()[-1])["seconds"], rss


def job(name: str, root: Path | None, index_dir: Path, run_dir: Path, num_samples: int) -> tuple[float, float]:
    """timings.load of a real job (`python -m evalrunner ... shots=4`) and its peak RSS."""
    shutil.rmtree(run_dir, ignore_errors=True)
    _, rss = _measured([sys.executable, "-m", "evalrunner", f"dataset={name}", f"data_root={root or 'null'}",
                        f"index_dir={index_dir}", "model.latency_s=0", f"num_samples={num_samples}", "shots=4",
                        f"hydra.run.dir={run_dir}"])
    return json.loads((run_dir / "result.json").read_text())["timings"]["load"], rss


def same_items(name: str, root: Path, index_dir: Path) -> bool:
    """Whether the index gives exactly the items of a plain parse, in order, for both splits."""
    from evalrunner.registry import lookup

    cfg = _compose(name, root)
    plain = lookup("dataset", name)(cfg.dataset, root)
    indexed = lookup("dataset", name)(cfg.dataset, root, index_dir)
    return (list(plain.test_items()) == list(indexed.test_items())
            and list(plain.demo_pool()) == list(indexed.demo_pool()))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--val-questions", type=int, default=VAL_QUESTIONS, help="VQAv2 val questions; all else scales")
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--smoke", action="store_true", help="~2,000 questions, and the item-for-item check")
    p.add_argument("--child", nargs=2, metavar=("DATASET", "ROOT"), help=argparse.SUPPRESS)
    p.add_argument("--child-index", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child_parse(args.child[0], Path(args.child[1]), args.child_index)
        return 0
    if args.smoke:
        args.val_questions, args.num_samples = 2000, 100
    root = generate(args.val_questions)
    work = Path(os.environ.get("EVALRUNNER_SCALE_DIR", "/tmp/evalrunner-scale")) / f"runs-{args.val_questions}"
    shutil.rmtree(work, ignore_errors=True)
    print(f"data: {root} ({sum(f.stat().st_size for f in root.rglob('*.json')) / 1e6:.0f} MB of JSON); "
          f"jobs: num_samples={args.num_samples} shots=4 model=nearest")
    sample_load, sample_rss = job("vqav2", None, work / "index-sample", work / "sample", args.num_samples)
    print(f"sample-data job (reference): load {sample_load:.2f} s, peak RSS {sample_rss:.0f} MB")
    print(f"{'dataset':8} {'what':28} {'load s':>8} {'peak RSS MB':>12} {'RSS - sample':>13}")
    ok = True
    for name in ("vqav2", "coco"):
        rows = [("plain parse (today's code)", *plain_parse(name, root))]
        rows.append(("first job (builds index)", *job(name, root, work / "index", work / f"{name}-1",
                                                     args.num_samples)))
        rows.append(("later job (maps index)", *job(name, root, work / "index", work / f"{name}-2",
                                                   args.num_samples)))
        for what, seconds, rss in rows:
            print(f"{name:8} {what:28} {seconds:8.2f} {rss:12.0f} {rss - sample_rss:+13.0f}")
        later_s, later_rss = rows[2][1], rows[2][2]
        print(f"{name:8} first job's load / plain parse {rows[1][1] / rows[0][1]:.2f}; later job: load {later_s:.2f} s "
              f"(goal <= 1 s), RSS {later_rss - sample_rss:+.0f} MB over the sample job's (goal <= +200)")
        if args.smoke:
            same = same_items(name, root, work / "index")
            print(f"{name:8} index equals a plain parse item for item: {same}")
            ok &= same
    if not args.smoke:  # in CI, benchmarks/model_reuse.py --smoke runs on its own
        print()
        ok &= model_reuse.main(smoke=False, hidden=1024, layers=12) == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
