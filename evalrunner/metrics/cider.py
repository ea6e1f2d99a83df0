"""CIDEr-D as pycocoevalcap 1.2 computes it (n = 4, sigma = 6, clipped tf-idf, x10), scaled x100.

The arithmetic follows pycocoevalcap's operation order, so scores agree to the last bit or
nearly; its quirks are kept: the length penalty counts bigrams, not words, and the idf is taken
over the images being scored.
"""

import math
from collections import Counter, _count_elements  # type: ignore[attr-defined]
from collections.abc import Mapping, Sequence
from decimal import Decimal
from itertools import chain

import numpy as np

from evalrunner.metrics.ptb import tokenize

_N = 4
_PENALTY_DENOMINATOR = 2 * 6.0**2
# An n-gram is keyed by an int built from its word ids, which hashes far faster than a tuple.
Counts = list[dict[int, int]]


def _count(keys: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    # Counter's C helper without Counter's per-call overhead, which dominates for short captions.
    _count_elements(counts, keys)
    return counts


class _Text:
    """One distinct tokenized text: n-gram counts per order, in first-occurrence order."""

    __slots__ = ("counts", "norms", "idfs", "length")

    def __init__(self, ids: list[int], base: int) -> None:
        keys = ids
        self.counts: Counts = [_count(ids)]
        for k in range(1, _N):
            keys = [key * base + nxt for key, nxt in zip(keys, ids[k:], strict=False)]
            self.counts.append(_count(keys))
        self.length = len(ids) - 1 if ids else 0  # pycocoevalcap's "length" is the bigram count
        self.idfs: list[list[float]] = []
        self.norms: list[float] = []

    def weigh(self, idf: list[dict[int, float]], unseen_idf: float) -> None:
        for counts, order_idf in zip(self.counts, idf, strict=True):
            idfs = [order_idf.get(key, unseen_idf) for key in counts]
            # An explicit loop, because sum() of floats is compensated from Python 3.12 on.
            square_sum = 0.0
            for count, weight_idf in zip(counts.values(), idfs, strict=True):
                square_sum += (count * weight_idf) ** 2
            self.idfs.append(idfs)
            self.norms.append(math.sqrt(square_sum))


def _similarity(hyp: _Text, ref: _Text) -> list[float]:
    delta = float(hyp.length - ref.length)
    penalty = math.e ** (-(delta**2) / _PENALTY_DENOMINATOR)
    values = []
    for order in range(_N):
        ref_counts = ref.counts[order]
        value = 0.0
        # n-grams missing from the reference add exactly 0.0, so skipping them keeps every bit.
        for (key, count), key_idf in zip(hyp.counts[order].items(), hyp.idfs[order], strict=True):
            ref_count = ref_counts.get(key)
            if ref_count is not None:
                weight, ref_weight = count * key_idf, ref_count * key_idf
                value += min(weight, ref_weight) * ref_weight
        hyp_norm, ref_norm = hyp.norms[order], ref.norms[order]
        if hyp_norm != 0 and ref_norm != 0:
            value /= hyp_norm * ref_norm
        values.append(value * penalty)
    return values


def cider_d_scores(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]) -> list[float]:
    """Per-image CIDEr-D (x10, as pycocoevalcap) of tokenized hypotheses against tokenized references."""
    vocabulary: dict[str, int] = {}
    for words in chain(hypotheses, chain.from_iterable(references)):
        for word in words:
            vocabulary.setdefault(word, len(vocabulary))
    base = len(vocabulary) + 1
    texts: dict[tuple[str, ...], _Text] = {}
    for words in chain(hypotheses, chain.from_iterable(references)):
        key = tuple(words)
        if key not in texts:
            texts[key] = _Text([vocabulary[w] for w in key], base)
    hyp_texts = [texts[tuple(h)] for h in hypotheses]
    ref_texts = [[texts[tuple(r)] for r in refs] for refs in references]

    document_frequency: list[Counter[int]] = [Counter() for _ in range(_N)]
    for refs in ref_texts:
        for order in range(_N):
            document_frequency[order].update(set().union(*(r.counts[order] for r in refs)))
    # np.log, not math.log: pycocoevalcap's idf uses it, and the two may differ in the last bit.
    log_images = np.log(float(len(references)))
    logs = {df: np.log(float(df)) for order in document_frequency for df in set(order.values())}
    idf = [{key: float(log_images - logs[df]) for key, df in order.items()} for order in document_frequency]
    for text in texts.values():
        text.weigh(idf, float(log_images))

    scores = []
    for hyp, refs in zip(hyp_texts, ref_texts, strict=True):
        total = [0.0] * _N
        for ref in refs:
            total = [t + v for t, v in zip(total, _similarity(hyp, ref), strict=True)]
        score = (((total[0] + total[1]) + total[2]) + total[3]) / _N
        scores.append(score / len(refs) * 10.0)
    return scores


def cider(
    predictions: Mapping[int, str], references: Mapping[int, Sequence[str]], tokenizer: str = "python"
) -> float:
    """CIDEr-D x100 over the image ids of `predictions`, after PTB tokenization.

    `tokenizer` is "python" (Java only for texts outside what it is checked for) or "java" (all texts).
    The idf depends on the set of images scored, so a subset's score is not a mean of shard scores.
    """
    if tokenizer not in ("python", "java"):
        raise ValueError(f"unknown tokenizer {tokenizer!r}; known: python, java")
    ids = list(predictions)
    missing = [i for i in ids if not references.get(i)]
    if missing:
        raise ValueError(f"{len(missing)} image ids have no reference captions, e.g. {sorted(missing)[:10]}")
    if not ids:
        raise ValueError("cider needs at least one prediction")
    texts = list(dict.fromkeys(chain.from_iterable([predictions[i], *references[i]] for i in ids)))
    tokens = dict(zip(texts, tokenize(texts, tokenizer), strict=True))
    hypotheses = [tokens[predictions[i]] for i in ids]
    refs = [[tokens[r] for r in references[i]] for i in ids]
    score = float(np.mean(np.array(cider_d_scores(hypotheses, refs))))
    # Shift pycocoevalcap's shortest decimal repr by two places rather than multiplying by 100, so
    # our digits read exactly as its printed score (0.5997905185184199 -> 59.97905185184199,
    # where "* 100" would give 59.979051851841994); the two differ by at most one ulp.
    return float(Decimal(repr(score)).scaleb(2))
