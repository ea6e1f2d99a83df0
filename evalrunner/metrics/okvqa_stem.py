"""OK-VQA's answer stemming, as OpenFlamingo applies it to every prediction before VQA accuracy.

OK-VQA v1.1 ships its human answers already stemmed, so a prediction can only match once it is stemmed the
same way: NLTK tokenizes and POS-tags it, words ending in "ing" get WordNet's verb lemma, plural nouns are
singularized by `inflection`, and a table of manual matches overrides both. The result depends on NLTK's
data files (Punkt, the perceptron tagger, WordNet), which users download once; `check_resources` says
which one is missing before any generation starts.
"""

import functools
import importlib
import re
from collections.abc import Callable

from evalrunner.errors import UserError

_CUT = re.compile("Question|Answer|Short")

# (resource path for nltk.data.find, name for `python -m nltk.downloader`), as NLTK >= 3.9 looks them up:
# word_tokenize loads punkt_tab, pos_tag the "_eng" tagger, WordNetLemmatizer the wordnet corpus. The trailing
# "/" lets find() also match them as zip files, as the NLTK downloader may leave them (corpora/wordnet.zip).
RESOURCES = (
    ("tokenizers/punkt_tab/english/", "punkt_tab"),
    ("taggers/averaged_perceptron_tagger_eng/", "averaged_perceptron_tagger_eng"),
    ("corpora/wordnet/", "wordnet"),
)

# The benchmark's convention, as OpenFlamingo states it: words the automatic rules miss or get wrong, found by
# comparing OK-VQA's raw_answers with its stemmed answers. Keys are matched case-sensitively, token by token.
# fmt: off
MANUAL_MATCHES: dict[str, str] = {
    "police": "police", "las": "las", "vegas": "vegas", "yes": "yes", "jeans": "jean", "hell's": "hell",
    "domino's": "domino", "morning": "morn", "clothes": "cloth", "are": "are", "riding": "ride", "leaves": "leaf",
    "dangerous": "danger", "clothing": "cloth", "texting": "text", "kiting": "kite", "firefighters": "firefight",
    "ties": "tie", "married": "married", "teething": "teeth", "gloves": "glove", "tennis": "tennis",
    "dining": "dine", "directions": "direct", "waves": "wave", "christmas": "christmas", "drives": "drive",
    "pudding": "pud", "coding": "code", "plating": "plate", "quantas": "quanta", "hornes": "horn",
    "graves": "grave", "mating": "mate", "paned": "pane", "alertness": "alert", "sunbathing": "sunbath",
    "tenning": "ten", "wetness": "wet", "urinating": "urine", "sickness": "sick", "braves": "brave",
    "firefighting": "firefight", "lenses": "lens", "reflections": "reflect", "backpackers": "backpack",
    "eatting": "eat", "designers": "design", "curiousity": "curious", "playfulness": "play", "blindness": "blind",
    "hawke": "hawk", "tomatoe": "tomato", "rodeoing": "rodeo", "brightness": "bright", "circuses": "circus",
    "skateboarders": "skateboard", "staring": "stare", "electronics": "electron", "electicity": "elect",
    "mountainous": "mountain", "socializing": "social", "hamburgers": "hamburg", "caves": "cave",
    "transitions": "transit", "wading": "wade", "creame": "cream", "toileting": "toilet", "sautee": "saute",
    "buildings": "build", "belongings": "belong", "stockings": "stock", "walle": "wall", "cumulis": "cumuli",
    "travelers": "travel", "conducter": "conduct", "browsing": "brows", "pooping": "poop", "haircutting": "haircut",
    "toppings": "top", "hearding": "heard", "sunblocker": "sunblock", "bases": "base", "markings": "mark",
    "mopeds": "mope", "kindergartener": "kindergarten", "pies": "pie", "scrapbooking": "scrapbook",
    "couponing": "coupon", "meetings": "meet", "elevators": "elev", "lowes": "low", "men's": "men",
    "childrens": "children", "shelves": "shelve", "paintings": "paint", "raines": "rain", "paring": "pare",
    "expressions": "express", "routes": "rout", "pease": "peas", "vastness": "vast", "awning": "awn",
    "boy's": "boy", "drunkenness": "drunken", "teasing": "teas", "conferences": "confer", "ripeness": "ripe",
    "suspenders": "suspend", "earnings": "earn", "reporters": "report", "kid's": "kid", "containers": "contain",
    "corgie": "corgi", "porche": "porch", "microwaves": "microwave", "batter's": "batter", "sadness": "sad",
    "apartments": "apart", "oxygenize": "oxygen", "striping": "stripe", "purring": "pure",
    "professionals": "profession", "piping": "pipe", "farmer's": "farmer", "potatoe": "potato", "emirates": "emir",
    "womens": "women", "veteran's": "veteran", "wilderness": "wilder", "propellers": "propel", "alpes": "alp",
    "charioteering": "chariot", "swining": "swine", "illness": "ill", "crepte": "crept", "adhesives": "adhesive",
    "regent's": "regent", "decorations": "decor", "rabbies": "rabbi", "overseas": "oversea", "travellers": "travel",
    "casings": "case", "smugness": "smug", "doves": "dove", "nationals": "nation", "mustange": "mustang",
    "ringe": "ring", "gondoliere": "gondolier", "vacationing": "vacate", "reminders": "remind", "baldness": "bald",
    "settings": "set", "glaced": "glace", "coniferous": "conifer", "revelations": "revel", "personals": "person",
    "daughter's": "daughter", "badness": "bad", "projections": "project", "polarizing": "polar",
    "vandalizers": "vandal", "minerals": "miner", "protesters": "protest", "controllers": "control",
    "weddings": "wed", "sometimes": "sometime", "earing": "ear",
}
# fmt: on


def check_resources() -> None:
    """Raise a one-line UserError if the stemmer's packages or NLTK data files are not installed."""
    for module in ("nltk", "inflection"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise UserError(
                f"OK-VQA's answer stemming needs the {module} package: pip install 'evalrunner[okvqa]'"
            ) from None
    import nltk

    missing = []
    for path, name in RESOURCES:
        try:
            nltk.data.find(path)
        except LookupError:
            missing.append(name)
    if missing:  # all of them at once, so that one download fixes it
        raise UserError(
            f"OK-VQA's answer stemming needs NLTK's {', '.join(map(repr, missing))} data, which is not on NLTK's "
            f"data path (NLTK_DATA, ~/nltk_data, ...): python -m nltk.downloader {' '.join(missing)}"
        )


@functools.cache
def _tools() -> tuple[
    Callable[[str], list[str]], Callable[[list[str]], list[tuple[str, str]]], Callable[[str], str], Callable[[str], str]
]:
    check_resources()
    import inflection
    import nltk
    from nltk.tag.perceptron import PerceptronTagger

    # nltk.pos_tag(tokens) is PerceptronTagger().tag(tokens); some NLTK versions reload the model from disk on
    # every pos_tag call, so one tagger is kept here.
    tagger = PerceptronTagger()
    lemmatizer = nltk.stem.WordNetLemmatizer()
    return nltk.word_tokenize, tagger.tag, functools.partial(lemmatizer.lemmatize, pos="v"), inflection.singularize


@functools.lru_cache(maxsize=1 << 16)  # datasets repeat answers; tagging is the slow part
def stem(answer: str) -> str:
    """OpenFlamingo's postprocess_ok_vqa_generation: cut the generation like any VQA answer, then stem it.

    The cut (at "Question", "Answer" or "Short", then at the first ", ") is idempotent, so text that was
    already cut by the VQA post-processing gives the same result.
    """
    text = _CUT.split(answer, maxsplit=1)[0].split(", ", 1)[0]
    tokenize, tag, lemmatize_verb, singularize = _tools()
    words = []
    for word, pos in tag(tokenize(text)):
        if word in MANUAL_MATCHES:
            word = MANUAL_MATCHES[word]
        elif word.endswith("ing"):
            word = lemmatize_verb(word)
        elif pos.startswith(("NNS", "NNPS")):
            word = singularize(word)
        words.append(word)
    return " ".join(words)
