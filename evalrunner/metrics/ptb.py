"""PTB tokenization as pycocoevalcap does it: Stanford PTBTokenizer, then punctuation removal.

pycocoevalcap writes the texts of one call one per line into a file and runs the jar on it, and the
jar's tokens for a line can depend on the lines after it, or on there being none: "a." at a line's
end keeps its period unless the next line starts with one of a few sentence openers ("The", "A",
"In", ...), "no." keeps it only before a line starting with a digit, and so on (ptb_lexer.py). So
`tokenize(texts)` gives the tokens of `texts` as ONE such file, in the given order, and callers pass
the same files pycocoevalcap makes.

`tokenize(texts, "python")` handles in Python a file whose every text is of a class for which our
lexer is checked, token for token and in context, against the Java one (tests/test_metrics_cider.py):
ASCII letters, digits, whitespace and `.,!?;:'"()&-`, in word shapes the lexer treats plainly, and
one-letter words before a period, resolved from what follows them in the file. A file holding any
other text (unicode, URLs, abbreviations like "mr.", "u.s.", numbers like "1,000", ...) goes to the
jar that pycocoevalcap ships whole, so the result is the Java one by construction. The jar runs with
its input in a temporary directory of its own, so a read-only or shared install of pycocoevalcap works.
"""

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

from evalrunner.metrics.ptb_lexer import file_tokens, line_tokens

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
    """Tokens of each text from one jar run on `texts` as one file, lower-cased, PTB punctuation removed."""
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


def tokenize(texts: Sequence[str], tokenizer: str = "python") -> list[list[str]]:
    """Tokens of each text as pycocoevalcap's PTBTokenizer gives them for `texts` as ONE input file, in this order.

    "python" runs Java only for a file with a text outside the checked class, and then on the whole
    file; "java" runs it always.
    """
    if tokenizer not in ("python", "java"):
        raise ValueError(f"unknown tokenizer {tokenizer!r}; known: python, java")
    lines = [text.translate(_LINE_BREAKS) for text in texts]
    if tokenizer == "python":
        tokens = file_tokens(lines)
        if tokens is not None:
            return tokens
        if shutil.which("java") is None:
            rest = [text for text, line in zip(texts, lines, strict=True) if line_tokens(line) is None]
            raise RuntimeError(
                f"{len(rest)} of {len(texts)} texts (e.g. {rest[0]!r}) are outside what the Python PTB tokenizer "
                "is checked for and need Java on PATH (e.g. apt-get install default-jre-headless)"
            )
    return java_tokenize(lines)
