"""Top-k accuracy and ROC-AUC against their references: scikit-learn for ROC-AUC, a plain recount for top-k."""

import random
from fractions import Fraction

import numpy as np
import pytest
from helpers.oracles import sklearn_roc_auc

from evalrunner.metrics.classification import roc_auc, topk_accuracy, topk_hits

pytest.importorskip("sklearn", reason="the ROC-AUC oracle is scikit-learn, in the test extra")


def _random_case(rng: random.Random) -> tuple[list[float], list[int]]:
    n = rng.randint(2, 300)
    labels = [rng.randint(0, 1) for _ in range(n)]
    labels[:2] = [0, 1]  # both classes, as the metric needs
    rng.shuffle(labels)
    kind = rng.choice(["continuous", "few_levels", "all_tied", "probabilities", "extreme"])
    if kind == "continuous":
        scores = [rng.random() for _ in range(n)]
    elif kind == "few_levels":  # heavy ties, as softmax outputs of a weak model give
        levels = [rng.random() for _ in range(rng.randint(1, 4))]
        scores = [rng.choice(levels) for _ in range(n)]
    elif kind == "all_tied":
        scores = [0.5] * n
    elif kind == "probabilities":  # ties that only appear after float rounding of 1 - p
        scores = [1 - (1 - round(rng.random(), 2)) for _ in range(n)]
    else:
        scores = [rng.choice([0.0, 1.0, 1e-300, 1 - 1e-16, 5e-324]) for _ in range(n)]
    return scores, labels


def _exact_auc(scores: list[float], labels: list[int]) -> Fraction:
    """The definition itself, pair by pair, in exact arithmetic."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum(Fraction(int(p > n) * 2 + int(p == n), 2) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_roc_auc_equals_sklearn_on_thousands_of_random_inputs_with_ties() -> None:
    rng = random.Random(0)

    for _ in range(1000):
        scores, labels = _random_case(rng)
        ours, reference = roc_auc(scores, labels), sklearn_roc_auc(scores, labels)

        assert ours == reference, (scores, labels)


def test_roc_auc_is_the_exact_pairwise_definition_up_to_float_rounding() -> None:
    rng = random.Random(3)

    for _ in range(300):
        scores, labels = _random_case(rng)
        scores, labels = scores[:60], labels[:60]
        if len(set(labels)) < 2:
            continue

        assert roc_auc(scores, labels) == pytest.approx(float(_exact_auc(scores, labels)), abs=1e-12)


def test_roc_auc_counts_a_tie_between_a_positive_and_a_negative_as_one_half() -> None:
    assert roc_auc([0.3, 0.3], [0, 1]) == 0.5
    assert roc_auc([0.1, 0.3, 0.3, 0.9], [0, 0, 1, 1]) == (1 + 1 + 0.5 + 1) / 4


def test_roc_auc_does_not_depend_on_item_order() -> None:
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, 200) / 4
    labels = rng.integers(0, 2, 200)
    perm = rng.permutation(200)

    assert roc_auc(scores, labels) == roc_auc(scores[perm], labels[perm])


@pytest.mark.parametrize(
    "scores, labels, message",
    [([0.1, 0.2], [1, 1], "both positive and negative"), ([0.1], [0, 1], "1 scores for 2 labels"),
     ([0.1, 0.2], [0, 2], "0 or 1"), ([float("nan"), 0.2], [0, 1], "NaN")],
)
def test_roc_auc_rejects_inputs_sklearn_rejects(scores: list[float], labels: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        roc_auc(scores, labels)


def test_topk_accuracy_equals_a_plain_recount_on_random_rankings() -> None:
    rng = random.Random(2)
    names = [f"class {i}" for i in range(30)]

    for _ in range(200):
        n = rng.randint(1, 50)
        ranked = [rng.sample(names, 10) for _ in range(n)]
        labels = [rng.choice(names) for _ in range(n)]
        for k in (1, 5):
            recount = sum(1 for r, y in zip(ranked, labels) if y in r[:k])

            assert topk_accuracy(ranked, labels, k) == 100 * recount / n
            assert sum(topk_hits(ranked, labels, k)) == recount


def test_topk_accuracy_rejects_a_length_mismatch_and_k_below_one() -> None:
    with pytest.raises(ValueError, match="2 rankings for 1 labels"):
        topk_accuracy([["a"], ["b"]], ["a"], 1)
    with pytest.raises(ValueError, match="k=0"):
        topk_accuracy([["a"]], ["a"], 0)
