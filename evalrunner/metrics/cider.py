"""CIDEr-D as pycocoevalcap 1.2 computes it (n = 4, sigma = 6, clipped tf-idf, x10), scaled x100.

The arithmetic follows pycocoevalcap's operation order, so per-image scores agree to the last
bit; its quirks are kept: the length penalty counts bigrams, not words, and the idf is taken
over the images being scored. It runs on numpy arrays over all texts at once, with every sum
added term by term in pycocoevalcap's order and squares taken with Python's pow, as its are.
"""

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from itertools import chain, repeat
from typing import NamedTuple

import numpy as np

from evalrunner.metrics.ptb import tokenize

_N = 4
_PENALTY_DENOMINATOR = 2 * 6.0**2


class _Grams(NamedTuple):
    """The n-grams of one order: a row per distinct n-gram of each text, by text, then first occurrence."""

    text: np.ndarray
    gram: np.ndarray
    counts: np.ndarray
    start: np.ndarray  # per text, its first row
    size: np.ndarray  # per text, its number of rows
    grams: int  # distinct n-grams over all texts
    sorted_keys: np.ndarray  # text * grams + gram, ascending
    row_of_sorted: np.ndarray  # the row of each sorted key


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated ranges starts[i] + (0 .. sizes[i]), and each element's rank within its range."""
    ranks = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.repeat(starts, sizes) + ranks, ranks


def _sums_in_order(values: np.ndarray, rows: np.ndarray, ranks: np.ndarray, n_rows: int) -> np.ndarray:
    """Row sums added one by one from 0.0 in rank order, as pycocoevalcap's loops add (np.sum pairs terms)."""
    grid = np.zeros((int(ranks.max()) + 1 if len(ranks) else 0, n_rows))
    grid[ranks, rows] = values
    total = np.zeros(n_rows)
    for column in grid:
        total += column  # adding the 0.0 padding leaves every (non-negative) sum unchanged
    return total


def _gram_tables(texts: list[tuple[str, ...]]) -> list[_Grams]:
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    vocabulary = dict.fromkeys(chain.from_iterable(texts))
    vocabulary_size = len(vocabulary) + 1
    word_ids = dict(zip(vocabulary, range(len(vocabulary)), strict=True))
    words = map(word_ids.__getitem__, chain.from_iterable(texts))
    tokens = np.fromiter(words, dtype=np.int64, count=int(lengths.sum()))
    text_of = np.repeat(np.arange(len(texts)), lengths)
    _, position = _ranges(np.zeros_like(lengths), lengths)
    left = np.repeat(lengths, lengths) - position  # tokens from each one to its text's end
    ids, tables = tokens, []
    for k in range(1, _N + 1):
        valid = left >= k
        if k > 1:
            # An n-gram's id is the dense id of (its first n-1 words' id, its last word), so ids stay small.
            following = np.zeros_like(tokens)
            following[: len(tokens) - k + 1] = tokens[k - 1 :]
            _, dense = np.unique(ids[valid] * vocabulary_size + following[valid], return_inverse=True)
            ids = np.zeros_like(tokens)
            ids[valid] = dense
        grams = int(ids[valid].max()) + 1 if valid.any() else 1
        keys, first, counts = np.unique(text_of[valid] * grams + ids[valid], return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        text, size = keys[order] // grams, np.bincount(keys // grams, minlength=len(texts))
        row_of_sorted = np.empty_like(order)
        row_of_sorted[order] = np.arange(len(order))
        table = _Grams(
            text, keys[order] % grams, counts[order], np.cumsum(size) - size, size, grams, keys, row_of_sorted
        )
        tables.append(table)
    return tables


def cider_d_scores(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]) -> list[float]:
    """Per-image CIDEr-D (x10, as pycocoevalcap) of tokenized hypotheses against tokenized references."""
    index: dict[tuple[str, ...], int] = {}
    for words in chain(hypotheses, chain.from_iterable(references)):
        index.setdefault(tuple(words), len(index))
    texts = list(index)
    hyp = np.array([index[tuple(h)] for h in hypotheses], dtype=np.int64)
    ref = np.array([index[tuple(r)] for refs in references for r in refs], dtype=np.int64)
    n_refs = np.array([len(refs) for refs in references], dtype=np.int64)
    image_of_ref = np.repeat(np.arange(len(references)), n_refs)
    ref_rank = _ranges(np.zeros_like(n_refs), n_refs)[1]
    pair_hyp = hyp[image_of_ref]
    # pycocoevalcap's length is the bigram count.
    lengths = np.maximum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) - 1, 0)
    deltas = (lengths[pair_hyp] - lengths[ref]).tolist()
    penalties = {d: math.e ** (-(float(d) ** 2) / _PENALTY_DENOMINATOR) for d in set(deltas)}
    penalty = np.array([penalties[d] for d in deltas])
    # np.log, not math.log: pycocoevalcap's idf uses it, and the two may differ in the last bit.
    log_images = np.log(float(len(references)))
    totals = []
    for table in _gram_tables(texts):
        rows, _ = _ranges(table.start[ref], table.size[ref])
        image_grams = np.unique(np.repeat(image_of_ref, table.size[ref]) * table.grams + table.gram[rows])
        frequency = np.bincount(image_grams % table.grams, minlength=table.grams)
        logs = np.array([np.log(float(max(df, 1))) for df in range(int(frequency.max(initial=0)) + 1)])
        weights = table.counts * (log_images - logs[frequency])[table.gram]
        # Python's float power, as pycocoevalcap's pow(x, 2); numpy's square may differ in the last bit.
        squares = np.fromiter(map(pow, weights.tolist(), repeat(2)), dtype=np.float64, count=len(weights))
        _, rank = _ranges(table.start, table.size)
        norms = np.sqrt(_sums_in_order(squares, table.text, rank, len(texts)))

        rows, rank = _ranges(table.start[pair_hyp], table.size[pair_hyp])
        pair = np.repeat(np.arange(len(ref)), table.size[pair_hyp])
        wanted = ref[pair] * table.grams + table.gram[rows]
        found = np.minimum(np.searchsorted(table.sorted_keys, wanted), max(len(table.sorted_keys) - 1, 0))
        hit = table.sorted_keys[found] == wanted if len(table.sorted_keys) else np.zeros(len(wanted), dtype=bool)
        ref_weights = np.zeros(len(wanted))
        ref_weights[hit] = weights[table.row_of_sorted[found[hit]]]
        values = _sums_in_order(np.minimum(weights[rows], ref_weights) * ref_weights, pair, rank, len(ref))
        hyp_norms, ref_norms = norms[pair_hyp], norms[ref]
        scaled = (hyp_norms != 0) & (ref_norms != 0)
        values[scaled] /= hyp_norms[scaled] * ref_norms[scaled]
        totals.append(_sums_in_order(values * penalty, image_of_ref, ref_rank, len(references)))
    scores = (((totals[0] + totals[1]) + totals[2]) + totals[3]) / _N
    return (scores / n_refs * 10.0).tolist()


def cider_scores(
    predictions: Mapping[int, str], references: Mapping[int, Sequence[str]], tokenizer: str = "python"
) -> tuple[float, dict[int, float]]:
    """CIDEr-D x100 over the image ids of `predictions`, and each image's CIDEr-D x100, after PTB tokenization.

    Images are taken in the order of `predictions`' keys, which is the order pycocoevalcap's
    COCOEvalCap takes its image ids in: the PTB jar reads all references (image by image, each
    image's in their order) as one file and the predictions as another, and a text's tokens may
    depend on the lines after it. The idf comes from the references of the images scored, so an
    image's score depends on the whole set. The corpus score is pycocoevalcap's mean of the image
    scores with its decimal point shifted (see below); each image score is pycocoevalcap's x 100.
    """
    if tokenizer not in ("python", "java"):
        raise ValueError(f"unknown tokenizer {tokenizer!r}; known: python, java")
    ids = list(predictions)
    missing = [i for i in ids if not references.get(i)]
    if missing:
        raise ValueError(f"{len(missing)} image ids have no reference captions, e.g. {sorted(missing)[:10]}")
    if not ids:
        raise ValueError("cider needs at least one prediction")
    reference_tokens = iter(tokenize([r for i in ids for r in references[i]], tokenizer))
    refs = [[next(reference_tokens) for _ in references[i]] for i in ids]
    hypotheses = tokenize([predictions[i] for i in ids], tokenizer)
    scores = cider_d_scores(hypotheses, refs)
    score = float(np.mean(np.array(scores)))
    # Shift pycocoevalcap's shortest decimal repr by two places rather than multiplying by 100, so
    # our digits read exactly as its printed score (0.5997905185184199 -> 59.97905185184199,
    # where "* 100" would give 59.979051851841994); the two differ by at most one ulp.
    return float(Decimal(repr(score)).scaleb(2)), {i: s * 100 for i, s in zip(ids, scores, strict=True)}


def cider(predictions: Mapping[int, str], references: Mapping[int, Sequence[str]], tokenizer: str = "python") -> float:
    """CIDEr-D x100 over the image ids of `predictions`, after PTB tokenization (see `cider_scores`).

    `tokenizer` is "python" (Java only for a text set with texts outside what it is checked for) or
    "java" (always). The idf depends on the set of images scored, so a subset's score is not a mean of shard scores.
    """
    return cider_scores(predictions, references, tokenizer)[0]
