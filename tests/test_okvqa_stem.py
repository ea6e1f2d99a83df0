"""OK-VQA's answer stemming equals OpenFlamingo's, given the same NLTK resources; missing ones are one-line errors."""

import os
import random
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import oracles

from evalrunner.errors import UserError
from evalrunner.metrics import okvqa_stem
from evalrunner.metrics.okvqa_stem import MANUAL_MATCHES, RESOURCES, check_resources, stem

_PLURALS = (
    "dogs cats buses glasses mice geese children wolves knives lives axes analyses crises cacti octopuses people "
    "sheep fish news series species physics oxen quizzes matrices vertices moves statuses shoes toes potatoes "
    "heroes photos pianos cookies movies surfboards skateboards umbrellas zebras giraffes bananas donuts cities "
    "Yankees Beatles Americans Alps Mets Lakers Giants Simpsons Legos Nikes Kings"
).split()
_ING = (
    "surfing skateboarding swimming playing eating sleeping flying building king ring thing ceiling spring sing "
    "bring evening nothing something during ing Ing ING icing skiing snowboarding windsurfing parasailing lying "
    "dying tying seeing being going Boeing Beijing Reading wedding kingdoms rings"
).split()
_OTHER = (
    "red white blue yes no none the a an of and or is are was 2 10 0 1,000 3.5 1990s 50% $5 n/a new york "
    "kitchen don't it's can't o'clock a.m. mr. e-mail t-shirt black-and-white café naïve jalapeño über 日本 "
    "Ω bus glass grass tennis USA U.S. NFL iPhone McDonald's Wendy's 3d 4x4 2pm x"
).split()
_PUNCTUATION = list(".!?,;:\"'()[]&#@*/-") + ["...", "--", "``", "''"]
_CUTS = ["Question", "Answer", "Short", ", ", "QuestionAnswer", "question", "answer:", "Short answer"]
_SEPARATORS = [" ", " ", " ", "", ", ", " , ", "-", "  ", "\n", "\t", "'s ", ". "]


_CASINGS: list[Callable[[str], str]] = [str, str, str, str.capitalize, str.upper, str.title, str.swapcase]


def _casing(word: str, rng: random.Random) -> str:
    return rng.choice(_CASINGS)(word)


def _answers(count: int, seed: int) -> list[str]:
    """Realistic short answers, and adversarial ones: casing, punctuation, the cut words, odd whitespace."""
    rng = random.Random(seed)
    pools = [_PLURALS, _ING, list(MANUAL_MATCHES), _OTHER, _PUNCTUATION, _CUTS]
    weights = [5, 4, 5, 4, 1, 0.3]
    answers = ["", " ", "ing", "s", "Question", ", ", "\n", *MANUAL_MATCHES, *_PLURALS, *_ING]
    answers += [word.capitalize() for word in MANUAL_MATCHES]
    while len(answers) < count:
        size = rng.choice([1, 1, 1, 2, 2, 3, 4, 6])
        words = [_casing(rng.choice(rng.choices(pools, weights)[0]), rng) for _ in range(size)]
        text = words[0]
        for word in words[1:]:
            text += rng.choice(_SEPARATORS) + word
        if rng.random() < 0.2:
            text += rng.choice(_PUNCTUATION)
        if rng.random() < 0.1:
            text = rng.choice([" ", "\n", "the "]) + text
        if rng.random() < 0.1:
            text += rng.choice([" Question: what is it?", "\nAnswer: dogs", " Short answer: cats", ", riding"])
        answers.append(text)
    return answers


def _branches(answers: list[str]) -> Counter[str]:
    """Which of the stemmer's rules the tokens of these answers reach, to show the oracle test covers them all."""
    import nltk

    counts: Counter[str] = Counter()
    for answer in answers:
        for word, pos in nltk.pos_tag(nltk.word_tokenize(answer)):
            if word in MANUAL_MATCHES:
                counts["manual"] += 1
            elif word.endswith("ing"):
                counts["ing"] += 1
            elif pos in ("NNS", "NNPS"):
                counts[pos] += 1
            else:
                counts["unchanged"] += 1
    return counts


@pytest.mark.usefixtures("nltk_data")
def test_stem_equals_openflamingo_word_for_word_on_thousands_of_answers() -> None:
    answers = _answers(4000, seed=10)
    oracle = oracles.openflamingo_ok_vqa().postprocess_ok_vqa_generation

    mismatches = [(a, ours, theirs) for a in answers if (ours := stem(a)) != (theirs := oracle(a))]

    assert not mismatches, f"{len(mismatches)} of {len(answers)} differ, e.g. {mismatches[:5]}"
    branches = _branches(answers)
    assert min(branches[b] for b in ("manual", "ing", "NNS", "NNPS", "unchanged")) >= 100, branches
    assert sum(stem(a) != a for a in answers) > len(answers) // 2


@pytest.mark.usefixtures("nltk_data")
def test_stem_cuts_the_generation_like_openflamingo_before_stemming() -> None:
    generation = "riding horses, and more Question: what is this?"

    stemmed = stem(generation)

    assert stemmed == stem("riding horses") == oracles.openflamingo_ok_vqa().postprocess_ok_vqa_generation(generation)


def test_manual_matches_are_openflamingos_table() -> None:
    assert MANUAL_MATCHES == oracles.openflamingo_ok_vqa()._MANUAL_MATCHES


@pytest.mark.usefixtures("nltk_data")
def test_stem_tags_each_distinct_answer_once() -> None:
    stem.cache_clear()

    for _ in range(3):
        stem("flying kites")

    assert stem.cache_info().hits == 2 and stem.cache_info().misses == 1


def _data_without(root: Path, missing: str | None, zipped: bool) -> Path:
    """An NLTK data folder holding the resources but `missing`, as folders or as the downloader's zip files."""
    for path, name in RESOURCES:
        if name == missing:
            continue
        if not zipped:
            (root / path).mkdir(parents=True)
            continue
        kind, package, *inner = path.strip("/").split("/")  # tokenizers/punkt_tab.zip holds punkt_tab/english/...
        (root / kind).mkdir(exist_ok=True)
        with zipfile.ZipFile(root / kind / f"{package}.zip", "w") as archive:
            archive.writestr("/".join([package, *inner, "README"]), "")
    return root


# Each folder lacks one resource, in RESOURCES' order: each failure comes before NLTK loads (and keeps for good)
# the resources the later folders lack, so one process can try them all.
_ORACLE_WITHOUT_EACH = """
import re, sys, nltk
from helpers import oracles
for folder in sys.argv[1:]:
    nltk.data.path[:] = [folder]
    try:
        oracles.openflamingo_ok_vqa().postprocess_ok_vqa_generation("surfing dogs")
    except LookupError as error:
        print(re.search(r"nltk.download[(]'([a-z_]+)'[)]", str(error)).group(1))
"""


def test_the_checked_resources_are_the_ones_openflamingos_stemmer_loads(nltk_data: Path, tmp_path: Path) -> None:
    names = [name for _, name in RESOURCES]
    for missing in names:
        for path, name in RESOURCES:
            if name != missing:
                shutil.copytree(nltk_data / path, tmp_path / missing / path)

    run = subprocess.run(
        [sys.executable, "-c", _ORACLE_WITHOUT_EACH, *(str(tmp_path / name) for name in names)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == names


@pytest.mark.parametrize("zipped", [False, True])
def test_resources_pass_the_check_as_folders_or_zip_files(
    zipped: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(_data_without(tmp_path, None, zipped))])

    check_resources()


@pytest.mark.parametrize("zipped", [False, True])
@pytest.mark.parametrize("missing", [name for _, name in RESOURCES])
def test_a_missing_nltk_resource_is_one_line_naming_its_download(
    missing: str, zipped: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(_data_without(tmp_path, missing, zipped))])

    with pytest.raises(UserError) as error:
        check_resources()

    message = str(error.value)
    assert "\n" not in message and repr(missing) in message
    assert f"python -m nltk.downloader {missing}" in message


def test_stem_checks_resources_before_loading_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    stem.cache_clear()
    okvqa_stem._tools.cache_clear()

    with pytest.raises(UserError, match="python -m nltk.downloader punkt_tab averaged_perceptron_tagger_eng wordnet$"):
        stem("dogs")

    okvqa_stem._tools.cache_clear()  # so later tests load the tools from their own data path


@pytest.mark.parametrize("package", ["nltk", "inflection"])
def test_a_missing_package_is_one_line_naming_the_extra(package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` raise ImportError

    with pytest.raises(UserError) as error:
        check_resources()

    message = str(error.value)
    assert "\n" not in message and package in message and "pip install 'evalrunner[okvqa]'" in message
