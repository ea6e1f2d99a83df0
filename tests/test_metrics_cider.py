import json
import random
import shutil
from pathlib import Path

import oracles
import pytest

from evalrunner.metrics import cider
from evalrunner.metrics.cider import cider_d_scores
from evalrunner.metrics.ptb import _python_tokens, java_tokenize, tokenize

# Public reference cases, copied from shared/refdata (see tests/refdata/README.md for provenance).
FAKECAP = Path(__file__).resolve().parent / "refdata" / "coco_fakecap"
SAMPLE_COCO = Path(__file__).resolve().parents[1] / "evalrunner" / "sample_data" / "coco" / "dataset_coco.json"
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="the PTB tokenizer needs Java")

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

    ours = cider(predictions, references)
    theirs, _ = oracles.pycocoevalcap_cider(
        {i: _as_pycocoevalcap_needs(t) for i, t in predictions.items()},
        {i: [_as_pycocoevalcap_needs(t) for t in refs] for i, refs in references.items()},
    )

    assert ours == pytest.approx(theirs, rel=1e-9)
    assert ours > 0


@needs_java
def test_realistic_captions_give_the_same_per_image_scores_bit_for_bit() -> None:
    predictions, references = _fakecap()
    ids = list(predictions)[:200]
    texts = [predictions[i] for i in ids] + [r for i in ids for r in references[i]]
    tokens = dict(zip(texts, java_tokenize(texts), strict=True))

    ours = cider_d_scores([tokens[predictions[i]] for i in ids], [[tokens[r] for r in references[i]] for i in ids])
    _, theirs = oracles.pycocoevalcap_cider({i: predictions[i] for i in ids}, references)

    assert [100 * s for s in ours] == theirs


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


@needs_java
def test_python_tokenizer_equals_java_token_for_token_on_real_and_adversarial_captions() -> None:
    predictions, references = _fakecap()
    sample = json.loads(SAMPLE_COCO.read_text())["images"]
    real = [*predictions.values(), *(r for refs in references.values() for r in refs)]
    real += [s["raw"] for image in sample for s in image["sentences"]]
    rng = random.Random(2)
    adversarial = [_edge_text(rng) for _ in range(16000)] + [_random_text(rng) for _ in range(2000)]
    texts = list(dict.fromkeys(real + adversarial))

    java = java_tokenize(texts)  # one JVM for all of them
    python = [_python_tokens(text) for text in texts]

    assert len(real) > 8000 and len(set(adversarial)) > 15000
    assert [p for p, j in zip(python, java, strict=True) if p is not None and p != j] == []
    by_python = dict(zip(texts, (p is not None for p in python), strict=True))
    assert sum(by_python[t] for t in real) > 0.99 * len(real)
    assert sum(by_python[t] for t in set(adversarial)) > 2500


@needs_java
def test_python_and_java_tokenizers_give_the_same_cider_to_the_last_bit() -> None:
    predictions, references = _fakecap()
    rng = random.Random(3)
    random_predictions = {i: _edge_text(rng) for i in range(400)}
    random_references = {i: [rng.choice([_edge_text, _random_text])(rng) for _ in range(5)] for i in range(400)}

    fakecap_scores = [cider(predictions, references, tokenizer=t) for t in ("python", "java")]
    random_scores = [cider(random_predictions, random_references, tokenizer=t) for t in ("python", "java")]

    assert fakecap_scores == [59.97905185184199, 59.97905185184199]
    assert random_scores[0] == random_scores[1] and random_scores[0] > 0


@needs_java
def test_tokenizer_writes_nothing_into_the_pycocoevalcap_package(tmp_path: Path) -> None:
    package = Path(oracles._package_dir("pycocoevalcap")) / "tokenizer"
    before = sorted(p.name for p in package.iterdir())

    cider({1: "a dog", 2: "a cat"}, {1: ["a dog runs"], 2: ["a cat sits"]})

    assert sorted(p.name for p in package.iterdir()) == before
