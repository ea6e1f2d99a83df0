"""NLTK's data files for the OK-VQA stemmer, assembled offline (NLTK's downloads are unreachable here).

- WordNet 3.0 from Debian's wordnet-base and wordnet-sense-index packages (NLTK's reader opens index.sense
  when it loads), laid out as nltk_data/corpora/wordnet;
- an untrained Punkt model in the punkt_tab format (empty parameters: no abbreviations or collocations);
- an averaged perceptron tagger trained on generated tagged sentences, saved in NLTK's json format.

These are stand-ins, good for testing that our stemmer equals OpenFlamingo's given the same resources. They
do NOT reproduce real OK-VQA stems: the real tagger is trained on the Penn Treebank.

    python tests/helpers/nltk_resources.py DIR    # build them into DIR, then NLTK_DATA=DIR
"""

import random
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

DEBIAN_WORDNET = Path("/usr/share/wordnet")

# NLTK's WordNet reader requires the lexnames file, which Debian's package leaves out. WordNet 3.0's list,
# from lexnames(5WN); the third column is the syntactic category, 1-4 for noun, verb, adj, adv.
_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body noun.cognition "
    "noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive noun.object "
    "noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape "
    "noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication verb.competition "
    "verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession "
    "verb.social verb.stative verb.weather adj.ppl"
).split()
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}

# A small tagged vocabulary: enough for the tagger to learn the suffix and capital features that decide the
# stemmer's branches (plural nouns, proper plurals, -ing words), with some words ambiguous between tags.
_WORDS = {
    "DT": "the a an this that some every",
    "NN": "dog cat man bus train table pizza kitchen glass grass city sky tennis police skateboard building "
    "morning wedding clothing water fruit horse kite surf ride snow ceiling thing king ring",
    "NNS": "dogs cats men buses trains tables pizzas glasses cities leaves shelves horses clothes jeans kites "
    "buildings paintings ties gloves waves lenses boxes mice children wolves things rings",
    "NNP": "London Paris Nike Christmas Toyota Seattle Boeing Apple Honda Texas Vegas",
    "NNPS": "Americans Yankees Beatles Giants Alps Lakers Simpsons Mets Kings",
    "VBG": "riding surfing skateboarding eating running playing swimming cooking dining texting kiting "
    "sleeping flying painting building wedding morning",
    "VBZ": "is has rides eats plays flies",
    "VBP": "are have ride eat",
    "VBD": "was rode ate played married",
    "JJ": "red big small wooden dangerous white old happy",
    "CD": "2 10 1990 3.5 one two three",
    "IN": "of on in with for at",
    "CC": "and or",
    "RB": "very not sometimes",
    "PRP": "he she it they",
}
_TEMPLATES = (
    "DT NN VBZ VBG IN DT NN . | DT NNS VBP VBG IN DT NN . | NNP VBZ DT JJ NN . | DT NNPS VBD CD NNS . | "
    "PRP VBZ VBG NNS CC NNS . | JJ NNS | NN | NNS | VBG | NNP NNP | NNPS | CD NNS | DT JJ NN | VBG NNS | NNP NNPS | "
    "NN NNS | RB JJ | PRP VBD VBG IN NNP . | DT NN IN NNS | NNS IN DT NN ,"
).split(" | ")


def _tagged_sentences(count: int, seed: int) -> list[list[tuple[str, str]]]:
    rng = random.Random(seed)
    words = {tag: text.split() for tag, text in _WORDS.items()}
    punctuation = {".": ".", ",": ","}
    sentences = []
    for _ in range(count):
        tags = rng.choice(_TEMPLATES).split()
        sentence = [(t, t) if t in punctuation else (rng.choice(words[t]), t) for t in tags]
        if rng.random() < 0.3:  # lower-case and capitalized spellings of the same words
            sentence = [(w.capitalize() if i == 0 else w, t) for i, (w, t) in enumerate(sentence)]
        sentences.append(sentence)
    return sentences


def _wordnet(target: Path) -> None:
    if not all((DEBIAN_WORDNET / name).is_file() for name in ("data.noun", "index.sense")):
        raise RuntimeError(
            f"{DEBIAN_WORDNET} lacks WordNet: apt-get install wordnet-base wordnet-sense-index "
            "(bash .ci/test-env.sh does)"
        )
    shutil.copytree(DEBIAN_WORDNET, target)
    lines = [f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(_LEXNAMES)]
    (target / "lexnames").write_text("".join(lines), encoding="utf-8")


def build(root: Path) -> Path:
    """Write all three resources under root (a new or empty folder), which becomes an NLTK data folder."""
    import nltk
    from nltk.tag.perceptron import PerceptronTagger
    from nltk.tokenize.punkt import PunktParameters, save_punkt_params

    _wordnet(root / "corpora" / "wordnet")
    punkt = root / "tokenizers" / "punkt_tab" / "english"
    tagger_dir = root / "taggers" / "averaged_perceptron_tagger_eng"
    punkt.parent.mkdir(parents=True)
    tagger_dir.parent.mkdir(parents=True)
    # NLTK (3.10's path sandbox) writes model files only inside a folder on its data path.
    saved_path = list(nltk.data.path)
    nltk.data.path.insert(0, str(root))
    state = random.getstate()  # PerceptronTagger.train shuffles with the global RNG
    try:
        save_punkt_params(PunktParameters(), dir=str(punkt))
        random.seed(0)
        tagger = PerceptronTagger(load=False)
        tagger.train(_tagged_sentences(600, seed=0), nr_iter=5)
        tagger.save_to_json(lang="eng", loc=str(tagger_dir))
    finally:
        random.setstate(state)
        nltk.data.path[:] = saved_path
    return root


@pytest.fixture(scope="session")
def nltk_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The resources, built once per session; NLTK finds them and nothing else (nor the user's ~/nltk_data)."""
    import nltk

    root = build(tmp_path_factory.mktemp("nltk_data"))
    patch = pytest.MonkeyPatch()
    patch.setenv("NLTK_DATA", str(root))  # for subprocesses
    patch.setattr(nltk.data, "path", [str(root)])  # NLTK reads NLTK_DATA only when it is imported
    yield root
    patch.undo()


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
