"""PTB tokenization as pycocoevalcap does it: Stanford PTBTokenizer, then punctuation removal.

`tokenize(texts, "python")` handles in Python every text of a class for which our lexer is
checked, token for token, against the Java one (see tests/test_metrics_cider.py): ASCII letters,
digits, whitespace and `.,!?;:'"()&-`, in word shapes the lexer treats plainly. Any other text
(unicode, URLs, abbreviations like "mr.", "u.s.", numbers like "1,000", "o'clock", ...) goes to
the jar that pycocoevalcap ships, all in one call, so the result is the Java one by construction.
The jar runs with its input in a temporary directory of its own, so a read-only or shared install
of pycocoevalcap works.
"""

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

_JAR = "stanford-corenlp-3.4.1.jar"
_PUNCTUATION_TOKENS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
# The lexer also starts a new line at these; inside a caption they would shift every later line.
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\x0b\x0c\u2028\u2029"})


def _jar_path() -> str:
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("CIDEr's PTB tokenizer needs pycocoevalcap installed (pip install pycocoevalcap)")
    return os.path.join(list(spec.submodule_search_locations)[0], "tokenizer", _JAR)


def java_tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Tokens of each text, lower-cased, with PTB punctuation tokens removed."""
    if not texts:
        return []
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("CIDEr's PTB tokenizer needs Java on PATH (e.g. apt-get install default-jre-headless)")
    with tempfile.TemporaryDirectory(prefix="evalrunner-ptb-") as tmp:
        path = os.path.join(tmp, "captions.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(text.translate(_LINE_BREAKS) for text in texts))
        # C1-only JIT halves the run time of this short job and does not change the output.
        command = [
            java,
            "-XX:TieredStopAtLevel=1",
            "-cp",
            _jar_path(),
            "edu.stanford.nlp.process.PTBTokenizer",
            "-preserveLines",
            "-lowerCase",
            path,
        ]
        done = subprocess.run(command, cwd=tmp, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"PTBTokenizer failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")
    lines = done.stdout.decode().split("\n")
    if len(lines) < len(texts):
        raise RuntimeError(f"PTBTokenizer returned {len(lines)} lines for {len(texts)} texts")
    # pycocoevalcap joins the kept tokens with spaces and CIDEr splits on any whitespace, which
    # also splits tokens holding a no-break space (PTB writes "3 1/2" as "3\xa01/2").
    return [
        " ".join(t for t in line.rstrip().split(" ") if t not in _PUNCTUATION_TOKENS).split()
        for line in lines[: len(texts)]
    ]


# Words the lexer splits ("can not", "gon na"), whatever follows them.
_SPLIT_WORDS = frozenset(["cannot", "gimme", "gonna", "gotta", "lemme", "wanna"])
# Words the lexer may keep with a following period ("mr.", "no. 5"), found by running the jar on
# every string of up to 4 letters, a 170k-word English list and the lexer's own abbreviation lists,
# in lower, title and upper case, before a space, a capital, a digit and the line end. With single
# letters ("a."), they are left to Java; whether it keeps the period can depend on the next line.
_ABBREVIATIONS = frozenset(
    """adj adm adv al ala alex apr ariz ark art assn assoc asst atty attys aug ave az bancorp bhd bldg blvd
    brig bros ca calif capt cf cie cmdr co col colo comdr conn corp cos cpl ct dak dec del dept det dr drs
    elec ens esq est etc ext feb fig figs fla fri ft ga gen gov govs hon ill inc ind insp intl invt jan jos
    jr jul jun kan kans ky la lieut lt ltd maj mar mass md messrs mfg mich minn miss mlle mlles mme mmes mo
    mon mont mr mrs ms msgr mt mtg natl neb nev no nos nov oct okla op ore pa penn pfc ph plc pp ppte ppty
    pres prof profs prop pte ptes pty ptys pvt rd rep reps rev rt sen sens sep sept seq sfc sgt spc sq sr st
    ste supt supts sys tel tenn tex thu thurs treas tue tues univ va vol vols vs vt wash wed wis wisc wm wyo""".split()
)
_OUTSIDE_PYTHON_CLASS = re.compile(r"[^A-Za-z0-9 \t\n\r\x0b\x0c.,!?;:'\"()&-]")
# The lexer joins across spaces numbers (fractions "3 1/2", phone numbers) and dots (". . .").
_JOINED_ACROSS_SPACE = re.compile(r"[0-9]\s+\S*[0-9]|\.\s+\.")
# [(") lead] word[-word...][clitic] | digits, then [)"] [one punctuation mark, ".." or "..."] ["].
_CHUNK = re.compile(
    r"""(?P<lead>["(]?)
    (?:(?P<word>[A-Za-z]+(?:-[A-Za-z]+)*)
       (?P<clitic>(?<![nN])[nN]'[tT]|'(?:[sSdDmM]|[rR][eE]|[lL][lL]|[vV][eE])|')?
      |(?P<number>[0-9]+))
    (?P<close>[)"]?)(?P<punct>[.,!?;:]|\.\.\.?)?"?""",
    re.X,
)
# Most captions: words and spaces, perhaps one final period.
_PLAIN = re.compile(r"[A-Za-z \t\n\r\x0b\x0c]*(\.?)[ \t\n\r\x0b\x0c]*")
_BARE_CHUNKS: dict[str, tuple[str, ...]] = {"-": (), "--": (), ",": (), ".": (), "&": ("&",), '"': ()}


def _python_tokens(text: str) -> list[str] | None:
    """The Java tokens of `text` after punctuation removal, or None outside the checked class."""
    plain = _PLAIN.fullmatch(text)
    if plain is not None:
        period = plain.start(1)
        words = text[:period].lower().split() if plain.group(1) else text.lower().split()
        if not _SPLIT_WORDS.isdisjoint(words):
            return None
        if plain.group(1) and text[period - 1 : period].isalpha():
            if len(words[-1]) == 1 or words[-1] in _ABBREVIATIONS:
                return None
        return words
    if _OUTSIDE_PYTHON_CLASS.search(text) or _JOINED_ACROSS_SPACE.search(text):
        return None
    tokens: list[str] = []
    for chunk in text.split():
        chunk_tokens = _chunk_tokens(chunk)
        if chunk_tokens is None:
            return None
        tokens.extend(chunk_tokens)
    return tokens


@functools.lru_cache(maxsize=1 << 16)
def _chunk_tokens(chunk: str) -> tuple[str, ...] | None:
    """The tokens of one whitespace-free chunk of a text in the checked class, or None."""
    if chunk.isalpha():
        lower = chunk.lower()
        return None if lower in _SPLIT_WORDS else (lower,)
    bare = _BARE_CHUNKS.get(chunk)
    if bare is not None:
        return bare
    match = _CHUNK.fullmatch(chunk)
    if match is None:
        return None
    lead, word, clitic, number, close, punct = match.group("lead", "word", "clitic", "number", "close", "punct")
    tokens = ["-lrb-"] if lead == "(" else []
    if word is None:
        tokens.append(number)
    else:
        lower = word.lower()
        parts = lower.split("-")
        clitic = clitic.lower() if clitic else ""
        # "o're", "dog-o're", "x-don't" are single tokens or split otherwise.
        if not _SPLIT_WORDS.isdisjoint(parts) or (clitic and (len(parts) > 1 or len(lower) == 1)):
            return None
        if punct and punct[0] == "." and not clitic and not close:
            if len(parts[-1]) == 1 or parts[-1] in _ABBREVIATIONS:
                return None
        tokens.append(lower)
        if clitic not in ("", "'"):
            tokens.append(clitic)
    if close == ")":
        tokens.append("-rrb-")
    return tuple(tokens)


def tokenize(texts: Sequence[str], tokenizer: str = "python") -> list[list[str]]:
    """Tokens of each text as pycocoevalcap's PTBTokenizer gives them (lower-cased, punctuation removed).

    "python" runs Java only for texts outside the checked class; "java" runs it for all.
    """
    if tokenizer == "java":
        return java_tokenize(texts)
    if tokenizer != "python":
        raise ValueError(f"unknown tokenizer {tokenizer!r}; known: python, java")
    tokens = [_python_tokens(text) for text in texts]
    rest = [i for i, t in enumerate(tokens) if t is None]
    if rest and shutil.which("java") is None:
        example = texts[rest[0]]
        raise RuntimeError(
            f"{len(rest)} of {len(texts)} texts (e.g. {example!r}) are outside what the Python PTB tokenizer "
            "is checked for and need Java on PATH (e.g. apt-get install default-jre-headless)"
        )
    for i, java_tokens in zip(rest, java_tokenize([texts[i] for i in rest]), strict=True):
        tokens[i] = java_tokens
    return [t for t in tokens if t is not None]
