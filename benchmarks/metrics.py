"""Times evalrunner's metrics against the reference implementations at full evaluation scale.

Run as `python benchmarks/metrics.py [--quick | --smoke] [--cider-only]`. Inputs are synthetic and
seeded: VQAv2-val-sized (214,354 questions x 10 answers) and COCO-test-sized (5,000 images x 5
references, realistic captions and the word soup of issue 9). Every pair of results is checked
equal (CIDEr: per image and overall, bit for bit) before its time is reported; a failed check exits 1.
`--smoke` runs tiny sizes in well under a minute, for CI.
"""

import argparse
import importlib.util
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from evalrunner.metrics import cider_scores, vqa_accuracy
from evalrunner.metrics.vqa import vqa_scores

_SUBJECTS = [
    "man",
    "woman",
    "dog",
    "cat",
    "giraffe",
    "train",
    "bus",
    "child",
    "group of people",
    "plate",
    "pizza",
    "skateboarder",
    "surfer",
    "bird",
    "horse",
    "elephant",
    "clock tower",
    "kitchen",
    "laptop",
    "zebra",
    "teddy bear",
    "fire hydrant",
    "motorcycle",
    "boat",
    "baseball player",
    "tennis player",
]
_ADJECTIVES = ["", "", "small", "large", "white", "black", "red", "young", "old", "wooden", "busy", "empty"]
_VERBS = [
    "sitting",
    "standing",
    "riding",
    "eating",
    "holding",
    "walking",
    "parked",
    "flying",
    "laying",
    "playing with",
    "looking at",
    "next to",
]
_PLACES = [
    "on a table",
    "in a field",
    "on the street",
    "near the water",
    "in front of a building",
    "on a beach",
    "in the snow",
    "at the station",
    "under an umbrella",
    "by a fence",
    "in a kitchen",
    "on top of a wooden bench",
    "down the road",
    "in the air",
    "at night",
]
_TAILS = [
    "",
    "",
    "",
    ".",
    ".",
    " .",
    "!",
    ", smiling.",
    " with 2 friends",
    " - 1,000 ft up",
    " (blurry)",
    ' "wow"',
    " that's cool",
    " in the U.S.",
    " at 3:30 p.m.",
    "...",
    " & co",
    " don't",
]


def caption(rng: random.Random) -> str:
    adjective = rng.choice(_ADJECTIVES)
    article = rng.choice(["A", "a", "The", "the", "Two", "An", ""])
    words = [
        article,
        adjective,
        rng.choice(_SUBJECTS),
        rng.choice(["is", "", "are"]),
        rng.choice(_VERBS),
        rng.choice(_PLACES),
    ]
    text = " ".join(w for w in words if w) + rng.choice(_TAILS)
    return text.upper() if rng.random() < 0.01 else text


def captions(images: int, refs_per_image: int, seed: int) -> tuple[dict[int, str], dict[int, list[str]]]:
    rng = random.Random(seed)
    predictions = {100000 + i: caption(rng) for i in range(images)}
    references = {i: [caption(rng) for _ in range(refs_per_image)] for i in predictions}
    return predictions, references


_ANSWERS = [
    "yes",
    "no",
    "2",
    "two",
    "1",
    "3",
    "white",
    "red",
    "blue",
    "black",
    "dog",
    "cat",
    "tennis",
    "baseball",
    "pizza",
    "kitchen",
    "frisbee",
    "left",
    "right",
    "wood",
    "none",
    "nothing",
    "10:30",
    "1,000",
    "50%",
    "n/a",
    "don't know",
    "isnt",
    "t-shirt",
    "skateboarding",
    "green and white",
    "man",
    "woman",
    "umbrella",
    "surfing",
    "giraffe",
    "0",
    "4",
    "many",
    "eating",
    "standing",
]


def _spelling(rng: random.Random, answer: str) -> str:
    roll = rng.random()
    if roll < 0.75:
        return answer
    if roll < 0.82:
        return answer.capitalize()
    if roll < 0.87:
        return answer + rng.choice([".", "!", " ", "?"])
    if roll < 0.92:
        return rng.choice(["a ", "the ", "an "]) + answer
    if roll < 0.96:
        return answer + rng.choice(["s", "es"])
    return answer.replace(" ", "  ") + rng.choice(["", "\t"])


def vqa(questions: int, seed: int) -> tuple[dict[int, str], dict[int, list[str]]]:
    rng = random.Random(seed)
    answers = {}
    for qid in range(questions):
        pool = rng.sample(_ANSWERS, rng.choice([1, 2, 2, 3, 4]))
        answers[qid * 10 + 7] = [_spelling(rng, rng.choice(pool)) for _ in range(10)]
    predictions = {
        qid: _spelling(rng, rng.choice(human) if rng.random() < 0.6 else rng.choice(_ANSWERS))
        for qid, human in answers.items()
    }
    return predictions, answers


def _test_module(name: str) -> ModuleType:
    # tests/helpers/oracles.py is the one place that wraps the reference code, tests/helpers/captions.py makes the word
    # soup; neither is an installed module.
    path = Path(__file__).resolve().parent.parent / "tests" / "helpers" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"evalrunner_test_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def _check(equal: bool, what: str) -> None:
    if not equal:
        sys.exit(f"benchmarks/metrics.py: {what} differs from the reference")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="a tenth of the scale")
    sizes.add_argument("--smoke", action="store_true", help="tiny sizes (under a minute) that still check equality")
    parser.add_argument("--cider-only", action="store_true", help="skip the VQA rows")
    args = parser.parse_args()
    questions, images = (2_000, 200) if args.smoke else (21_435, 1_000) if args.quick else (214_354, 5_000)
    oracles, soup = _test_module("oracles"), _test_module("captions")
    rows = []

    if not args.cider_only:
        predictions, answers = vqa(questions, seed=0)
        ours, ours_s = _timed(lambda: vqa_scores(predictions, answers, "official"))
        theirs, theirs_s = _timed(lambda: oracles.axlearn_scores(predictions, answers))
        _check(ours == theirs, "VQA official")
        rows.append(("VQA official", "axlearn metrics_vqa", questions, ours_s, theirs_s))
        for variant, run, name in [
            ("vqa2016", oracles.lavis_evaluator, "salesforce-lavis VQAEval"),
            ("openflamingo", oracles.openflamingo_evaluator, "open-flamingo VQAEval"),
        ]:
            annotations, results = oracles.vqa_api_inputs(predictions, answers)
            accuracy, ours_s = _timed(lambda v=variant: vqa_accuracy(predictions, answers, v))
            evaluator, theirs_s = _timed(lambda r=run, a=annotations, s=results: r(a, s))
            _check(round(accuracy, 2) == evaluator.accuracy["overall"], f"VQA {variant}")
            rows.append((f"VQA {variant}", name, questions, ours_s, theirs_s))
        entries = [{"pred_answer": p, "gt_answers": answers[q]} for q, p in predictions.items()]
        evaluator = oracles.mmf_m4c_evaluators().TextVQAAccuracyEvaluator()
        ours, ours_s = _timed(lambda: vqa_scores(predictions, answers, "textvqa"))
        theirs, theirs_s = _timed(lambda: evaluator.eval_pred_list(entries))
        _check(sum(ours) / len(ours) == theirs, "VQA textvqa")
        rows.append(("VQA textvqa", "mmf m4c TextVQAAccuracyEvaluator", questions, ours_s, theirs_s))

    for kind, (predictions, references) in [
        ("captions", captions(images, 5, seed=0)),
        ("word soup", soup.word_soup(images, 5, seed=0)),
    ]:
        (_, _, score, scores), theirs_s = _timed(
            lambda p=predictions, r=references: oracles.pycocoevalcap_cider_run(p, r)
        )
        for tokenizer in ("python", "java"):
            (value, per_image), ours_s = _timed(lambda p=predictions, r=references, t=tokenizer: cider_scores(p, r, t))
            _check(list(per_image.values()) == [s * 100 for s in scores], f"CIDEr per image ({kind}, {tokenizer})")
            _check(value == float(Decimal(repr(score)).scaleb(2)), f"CIDEr ({kind}, {tokenizer})")
            rows.append((f"CIDEr, {kind} ({tokenizer} PTB + CIDEr-D)", "pycocoevalcap 1.2", images, ours_s, theirs_s))

    print("| metric | reference | items | ours (s) | reference (s) | speed-up |")
    print("|---|---|---:|---:|---:|---:|")
    for metric, reference, items, ours_s, theirs_s in rows:
        print(f"| {metric} | {reference} | {items:,} | {ours_s:.2f} | {theirs_s:.2f} | {theirs_s / ours_s:.1f}x |")


if __name__ == "__main__":
    main()
