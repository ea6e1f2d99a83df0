"""PTB tokenization as pycocoevalcap does it: Stanford PTBTokenizer, then punctuation removal.

We run the jar that pycocoevalcap ships, once for all texts, with its input in a temporary
directory of its own, so a read-only or shared install of pycocoevalcap works.
"""

import importlib.util
import os
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
