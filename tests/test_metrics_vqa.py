import json
import random
from pathlib import Path

import pytest
from helpers import oracles

from evalrunner.metrics import vqa_accuracy
from evalrunner.metrics.vqa import vqa_scores
from evalrunner.metrics.vqa_normalize import normalize, normalize_evalai, process_punctuation

# Public reference cases, copied from shared/refdata (see tests/refdata/README.md for provenance).
REFDATA = Path(__file__).resolve().parent / "refdata"
CASES = json.loads((REFDATA / "vqa" / "vqa_reference_cases.json").read_text())

_BASES = [
    "yes",
    "no",
    "2",
    "two",
    "1,000",
    "1000",
    "3.5",
    "n/a",
    "50%",
    "don't",
    "dont",
    "isnt",
    "a dog",
    "the dogs",
    "dog",
    "red and white",
    "10:30",
    "none",
    "one",
    "ten",
    "o'clock",
    "oclock",
    "t-shirt",
    "tennis racket",
    "3 1/2",
    "$5",
    "100,000.50",
    "yes, it is",
    "café",
    "ñ",
    "...",
    "",
    " ",
    "e.g.",
    "he's",
    "hes",
    "im",
    "I'm",
    "left/right",
    "(maybe)",
    "#1",
    "a",
    "an apple",
    "u.s.a.",
    "7-up",
]
_DECORATIONS = [
    lambda s: s,
    str.upper,
    str.title,
    str.capitalize,
    lambda s: s + ".",
    lambda s: s + "!",
    lambda s: s + "?",
    lambda s: " " + s + " ",
    lambda s: s.replace(" ", "  "),
    lambda s: s.replace(" ", "\t"),
    lambda s: "\n" + s,
    lambda s: "the " + s,
    lambda s: s + ",",
    lambda s: '"' + s + '"',
    lambda s: s + " ." * 20,
    lambda s: s.replace("o", "0"),
]


def _messy(rng: random.Random) -> str:
    text = rng.choice(_BASES)
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        text = rng.choice(_DECORATIONS)(text)
    return text


def _random_questions(seed: int, count: int) -> tuple[dict[int, str], dict[int, list[str]]]:
    rng = random.Random(seed)
    predictions, answers = {}, {}
    for qid in range(count):
        pool = [_messy(rng) for _ in range(rng.choice([1, 1, 2, 3, 5]))]
        if rng.random() < 0.2:
            human = [pool[0]] * 10
        elif rng.random() < 0.1:
            human = [pool[0].upper()] * 5 + [pool[0].lower()] * 5
        else:
            human = [rng.choice(pool) for _ in range(10)]
        answers[qid] = human
        predictions[qid] = rng.choice([rng.choice(human), _messy(rng), pool[0].upper() + "."])
    return predictions, answers


def _all_cases() -> list[dict]:
    keys = ("maintainer_example", "score_cases", "version_divergence_probes_helper_made")
    return [case for key in keys for case in CASES[key]]


def _as_inputs(cases: list[dict]) -> tuple[dict[int, str], dict[int, list[str]]]:
    return ({i: c["answer"] for i, c in enumerate(cases)}, {i: c["gt_answers"] for i, c in enumerate(cases)})


def test_normalization_equals_the_oracles_on_random_punctuation_heavy_strings() -> None:
    rng = random.Random(2)
    alphabet = "ab yesnotwo1234567890,,..../-!?;:'\"()[]{}<>=+_@`\\\t\n é€\u00a0"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    texts += ["." * n + "5" for n in range(30, 40)] + [w + " " + w for w in _BASES]
    official = oracles.axlearn_vqa()
    lavis = oracles.lavis_vqa_eval().VQAEval()

    ours = [(normalize(t), process_punctuation(t)) for t in texts]

    assert ours == [
        (official._en_normalizer(t.replace("\n", " ").replace("\t", " ").strip()), lavis.processPunctuation(t))
        for t in texts
    ]


def test_normalization_matches_the_official_outputs_of_every_reference_case() -> None:
    cases = CASES["normalization_cases"]

    ours = [normalize(case["input"]) for case in cases]

    assert ours == [case["official_processPunctuation_then_processDigitArticle"] for case in cases]


@pytest.mark.parametrize("variant,key", [("official", "official_HEAD"), ("vqa2016", "official_pre2021")])
def test_reference_cases_score_as_the_official_code_of_each_era(variant: str, key: str) -> None:
    cases = _all_cases()
    predictions, answers = _as_inputs(cases)

    scores = vqa_scores(predictions, answers, variant)

    assert [round(s, 10) for s in scores] == [case[key] for case in cases]


def test_maintainer_example_gives_one_for_the_majority_and_point_six_for_the_minority() -> None:
    human = ["yes"] * 8 + ["no"] * 2

    accuracy = vqa_accuracy({1: "yes", 2: "no"}, {1: human, 2: human})

    assert accuracy == pytest.approx(80.0, abs=1e-12)


def test_official_variant_equals_axlearn_question_by_question() -> None:
    predictions, answers = _random_questions(seed=0, count=5000)
    cases_p, cases_a = _as_inputs(_all_cases())
    predictions.update({10**6 + i: p for i, p in cases_p.items()})
    answers.update({10**6 + i: a for i, a in cases_a.items()})

    ours = vqa_scores(predictions, answers, "official")
    theirs = oracles.axlearn_scores(predictions, answers)

    assert ours == theirs
    assert vqa_accuracy(predictions, answers) == pytest.approx(100 * sum(theirs) / len(theirs), rel=1e-9)
    assert {0.0, 1.0} <= set(theirs) and len({s for s in theirs if 0 < s < 1}) >= 3


@pytest.mark.parametrize("variant", ["vqa2016", "openflamingo"])
def test_variant_equals_its_vqa_eval_oracle_rounded_per_question_and_overall(variant: str) -> None:
    predictions, answers = _random_questions(seed=1, count=5000)
    annotations, results = oracles.vqa_api_inputs(predictions, answers)
    run = oracles.lavis_evaluator if variant == "vqa2016" else oracles.openflamingo_evaluator

    evaluator = run(annotations, results)
    ours = vqa_scores(predictions, answers, variant)

    assert {qid: round(100 * s, 2) for qid, s in zip(predictions, ours, strict=True)} == evaluator.evalQA
    assert round(vqa_accuracy(predictions, answers, variant), 2) == evaluator.accuracy["overall"]


def test_the_three_variants_disagree_where_the_readme_says_they_do() -> None:
    human = ["2"] * 9 + ["3"]
    unanimous = ["yes"] * 10

    official = vqa_scores({1: "two", 2: "Yes"}, {1: human, 2: unanimous}, "official")
    vqa2016 = vqa_scores({1: "two", 2: "Yes"}, {1: human, 2: unanimous}, "vqa2016")
    flamingo = vqa_scores({1: "two", 2: "two"}, {1: human, 2: ["two"] * 10}, "openflamingo")

    assert official == [1.0, 0.0]
    assert vqa2016 == [1.0, 1.0]
    assert flamingo == [1.0, 1.0]


def test_vizwiz_answers_without_ids_count_every_annotator_unlike_openflamingo() -> None:
    # VizWiz answers carry no answer_id, so OpenFlamingo's dict comparison drops every duplicate of
    # the held-out answer, not just the held-out one; we compare by position instead.
    human = ["blue"] * 3 + ["navy"] * 7
    predictions, answers = {1: "blue"}, {1: human}
    annotations, results = oracles.vqa_api_inputs(predictions, answers, with_answer_ids=False)

    theirs = oracles.openflamingo_evaluator(annotations, results).accuracy["overall"]
    ours = vqa_accuracy(predictions, answers, "openflamingo")

    assert theirs == 70.0
    assert ours == pytest.approx(90.0, abs=1e-12)


def test_missing_answers_raise_an_error_naming_the_question_ids() -> None:
    with pytest.raises(ValueError, match=r"\[7, 9\]"):
        vqa_accuracy({1: "yes", 7: "no", 9: "no"}, {1: ["yes"] * 10, 9: []})


def test_an_unknown_variant_raises_an_error_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="official, vqa2016, openflamingo"):
        vqa_accuracy({1: "yes"}, {1: ["yes"] * 10}, variant="vqa2017")


# EvalAI's processing splits off "'s" and deletes commas and question marks before anything else.
_EVALAI_BASES = ["it's", "IT'S", "john's book", "1,000", "3,5", "what?", "why?!", "a,b", "'s", "s's", "dog's."]


def test_textvqa_variant_equals_mmfs_m4c_evaluator_question_by_question_and_overall() -> None:
    predictions, answers = _random_questions(seed=3, count=5000)
    rng = random.Random(4)
    for qid in range(5000, 6000):
        pool = [rng.choice(_EVALAI_BASES + _BASES) for _ in range(3)]
        answers[qid] = [rng.choice(pool) for _ in range(10)]
        predictions[qid] = rng.choice([answers[qid][0].upper(), rng.choice(_EVALAI_BASES), pool[1] + "?"])

    overall, theirs = oracles.m4c_textvqa(predictions, answers)
    ours = vqa_scores(predictions, answers, "textvqa")

    assert ours == theirs
    assert sum(ours) / len(ours) == overall
    assert vqa_accuracy(predictions, answers, "textvqa") == 100 * sum(ours) / len(ours)
    assert {0.0, 1.0} <= set(theirs) and len({s for s in theirs if 0 < s < 1}) >= 3


def test_evalai_normalization_equals_mmfs_answer_processor_on_random_strings() -> None:
    rng = random.Random(5)
    alphabet = "ab sSyesnotwo1234567890,,..../-!?;:'\"()[]{}<>=+_@`\\\t\n éİ€\u00a0"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    texts += _EVALAI_BASES + ["." * n + "5" for n in range(30, 40)]
    processor = oracles.mmf_m4c_evaluators().EvalAIAnswerProcessor()

    ours = [normalize_evalai(t) for t in texts]

    assert ours == [processor(t) for t in texts]


def test_textvqa_variant_always_normalizes_unlike_official() -> None:
    unanimous = ["coca cola"] * 10

    official = vqa_scores({1: "Coca-Cola's"}, {1: unanimous}, "official")
    textvqa = vqa_scores({1: "Coca Cola"}, {1: unanimous}, "textvqa")

    assert official == [0.0]
    assert textvqa == [1.0]
