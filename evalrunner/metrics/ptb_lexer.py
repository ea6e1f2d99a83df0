"""The Stanford PTB lexer (CoreNLP 3.4.1, as pycocoevalcap runs it) in Python, for a class of plain texts.

The class: ASCII letters, digits, whitespace and `.,!?;:'"()&-`, in word shapes the lexer treats
plainly. Within it, one rule looks past a line's end: a one-letter word and its period ("a.", "(A.")
keep the period unless whitespace and one of `_OPENERS` follow, then whitespace again, in the rest
of the file. And a file that ends in "'re", "'ll" or "'ve" ("they're") splits off the apostrophe,
which is then dropped as punctuation ("re"): the lexer takes a clitic only before a character that is
not a letter. Every other text of the class is tokenized the same whatever its neighbours.
tests/test_metrics_cider.py checks all of this against the jar.
"""

import functools
import re
from collections.abc import Sequence
from typing import NamedTuple

# Words the lexer splits ("can not", "gon na"), whatever follows them.
_SPLIT_WORDS = frozenset(["cannot", "gimme", "gonna", "gotta", "lemme", "wanna"])
# Words the lexer may keep with a following period ("mr.", "no. 5"), found by running the jar on
# every string of up to 4 letters, a 170k-word English list and the lexer's own abbreviation lists,
# in lower, title and upper case, before a space, a capital, a digit and the line end. Texts with
# them are left to Java: some ("no.", "fig.", "art.") keep the period only before a digit, which may
# be the start of the next line.
_ABBREVIATIONS = frozenset(
    """adj adm adv al ala alex apr ariz ark art assn assoc asst atty attys aug ave az bancorp bhd bldg blvd
    brig bros ca calif capt cf cie cmdr co col colo comdr conn corp cos cpl ct dak dec del dept det dr drs
    elec ens esq est etc ext feb fig figs fla fri ft ga gen gov govs hon ill inc ind insp intl invt jan jos
    jr jul jun kan kans ky la lieut lt ltd maj mar mass md messrs mfg mich minn miss mlle mlles mme mmes mo
    mon mont mr mrs ms msgr mt mtg natl neb nev no nos nov oct okla op ore pa penn pfc ph plc pp ppte ppty
    pres prof profs prop pte ptes pty ptys pvt rd rep reps rev rt sen sens sep sept seq sfc sgt spc sq sr st
    ste supt supts sys tel tenn tex thu thurs treas tue tues univ va vol vols vs vt wash wed wis wisc wm wyo""".split()
)
# After "x.", these split the period off: the first letter as written, the rest in any case. Found by
# putting every word of COCO's captions, capitalized and upper-cased, on the line after "a.".
_OPENERS = """A About According Additionally After An As At But Earlier He Her Here However If In It Last Many More
    Mr. Ms. Now Once One Other Our She Since So Some Such That The Their Then There These They This We What When
    While Yet You""".split()
_OPENER_AHEAD = re.compile(
    r"[ \t\n]+(?:" + "|".join(re.escape(w[0]) + f"(?i:{re.escape(w[1:])})" for w in _OPENERS) + r")[ \t\n]"
)
_AHEAD_CHARS = 1 + max(map(len, _OPENERS))  # of text after the whitespace that can decide
_CLITIC_AT_END = re.compile(r"'(?i:re|ll|ve)\Z")
_OUTSIDE_PYTHON_CLASS = re.compile(r"[^A-Za-z0-9 \t.,!?;:'\"()&-]")
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
_PLAIN = re.compile(r"[A-Za-z \t]*(\.?)[ \t]*")
_BARE_CHUNKS: dict[str, tuple[str, ...]] = {"-": (), "--": (), ",": (), ".": (), "&": ("&",), '"': ()}


class Line(NamedTuple):
    tokens: tuple[str, ...]  # lower-cased, punctuation removed; a one-letter word before a period as "x."
    acronyms: tuple[tuple[int, int], ...]  # (token index, offset after its period) of each "x."


@functools.lru_cache(maxsize=1 << 16)
def line_tokens(text: str) -> Line | None:
    """The tokens of one line (no line breaks in it), or None outside the checked class."""
    plain = _PLAIN.fullmatch(text)
    if plain is not None:
        period = plain.start(1)
        words = tuple(text[:period].lower().split() if plain.group(1) else text.lower().split())
        if not _SPLIT_WORDS.isdisjoint(words):
            return None
        if plain.group(1) and text[period - 1 : period].isalpha():
            if len(words[-1]) == 1:
                return Line((*words[:-1], words[-1] + "."), ((len(words) - 1, period + 1),))
            if words[-1] in _ABBREVIATIONS:
                return None
        return Line(words, ())
    if _OUTSIDE_PYTHON_CLASS.search(text) or _JOINED_ACROSS_SPACE.search(text):
        return None
    tokens: list[str] = []
    acronyms = []
    for chunk in re.finditer(r"\S+", text):
        chunk_tokens = _chunk_tokens(chunk.group())
        if chunk_tokens is None:
            return None
        tokens.extend(chunk_tokens)
        if chunk_tokens and chunk_tokens[-1].endswith("."):
            acronyms.append((len(tokens) - 1, chunk.end()))
    return Line(tuple(tokens), tuple(acronyms))


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
            if punct == "." and len(lower) == 1 and chunk[-1] == ".":
                return (*tokens, lower + ".")  # its period depends on what follows
            if len(parts[-1]) == 1 or parts[-1] in _ABBREVIATIONS:
                return None
        tokens.append(lower)
        if clitic not in ("", "'"):
            tokens.append(clitic)
    if close == ")":
        tokens.append("-rrb-")
    return tuple(tokens)


def _ahead(lines: Sequence[str], line: int, offset: int) -> str:
    """The file's text after `offset` in `lines[line]`, as far as the opener rule can look."""
    parts = [lines[line][offset:]]
    while line + 1 < len(lines) and len("".join(parts).lstrip(" \t\n")) < _AHEAD_CHARS:
        line += 1
        parts.append("\n" + lines[line])
    return "".join(parts)


def file_tokens(lines: Sequence[str]) -> list[list[str]] | None:
    """The tokens of each line of one jar input file, or None if a line is outside the checked class."""
    result = []
    for number, text in enumerate(lines):
        line = line_tokens(text)
        if line is None:
            return None
        tokens = list(line.tokens)
        for index, offset in line.acronyms:
            if _OPENER_AHEAD.match(_ahead(lines, number, offset)):
                tokens[index] = tokens[index][:-1]
        result.append(tokens)
    if result and result[-1] and result[-1][-1] in ("'re", "'ll", "'ve") and _CLITIC_AT_END.search(lines[-1]):
        result[-1][-1] = result[-1][-1][1:]
    return result
