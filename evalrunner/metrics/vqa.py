"""VQA accuracy under the four conventions that published numbers use (see refdata/README.md).

Each answer is min(1, humans-that-agree / 3) averaged over the ten leave-one-out sets of human
answers. Human answers are compared by position, so duplicates in a list are counted as distinct
annotators even when, as in VizWiz, they carry no answer_id. OpenFlamingo's own copy compares
answer dicts instead and so undercounts duplicates there; our "openflamingo" variant does not.
"textvqa" is TextVQA's m4c evaluator (mmf): EvalAI's processing of every answer, always.
"""

from collections.abc import Callable, Mapping, Sequence

from evalrunner.metrics.vqa_normalize import normalize, normalize_evalai, process_punctuation, strip_layout

VARIANTS = ("official", "vqa2016", "openflamingo", "textvqa")


class _Memo(dict[str, str]):
    """A string cache: datasets have far fewer distinct answers than answers."""

    def __init__(self, function: Callable[[str], str]) -> None:
        super().__init__()
        self._function = function

    def __missing__(self, key: str) -> str:
        value = self[key] = self._function(key)
        return value


def _check_ids(predictions: Mapping[int, str], answers: Mapping[int, Sequence[str]]) -> None:
    if not predictions:
        raise ValueError("vqa accuracy needs at least one prediction")
    missing = [qid for qid in predictions if not answers.get(qid)]
    if missing:
        raise ValueError(f"{len(missing)} question ids have no human answers, e.g. {sorted(missing)[:10]}")


def _official(pred: str, human: Sequence[str], layout: _Memo, full: _Memo) -> tuple[str, list[str]]:
    refs = [layout[h] for h in human]
    if len(set(refs)) > 1:
        return full[pred], [full[h] for h in human]
    # Unanimous humans: exact match only, not even case is normalized (VQA issue #14).
    return layout[pred], refs


def _vqa2016(pred: str, human: Sequence[str], punct: _Memo, full: _Memo) -> tuple[str, list[str]]:
    if len(set(human)) > 1:
        return full[pred], [punct[h] for h in human]
    return full[pred], list(human)


def _openflamingo(pred: str, human: Sequence[str], _: _Memo, full: _Memo) -> tuple[str, list[str]]:
    return full[pred], [full[h] for h in human]


def _textvqa(pred: str, human: Sequence[str], evalai: _Memo, _: _Memo) -> tuple[str, list[str]]:
    return evalai[pred], [evalai[h] for h in human]


_PREPARE = {"official": _official, "vqa2016": _vqa2016, "openflamingo": _openflamingo, "textvqa": _textvqa}
_PARTIAL = {"official": strip_layout, "vqa2016": process_punctuation, "openflamingo": strip_layout,
            "textvqa": normalize_evalai}


def vqa_scores(
    predictions: Mapping[int, str],
    answers: Mapping[int, Sequence[str]],
    variant: str = "official",
) -> list[float]:
    """Per-question accuracy in [0, 1], in the order of `predictions`."""
    if variant not in _PREPARE:
        raise ValueError(f"unknown VQA variant {variant!r}; known: {', '.join(VARIANTS)}")
    _check_ids(predictions, answers)
    prepare = _PREPARE[variant]
    partial, full = _Memo(_PARTIAL[variant]), _Memo(normalize)
    # Float sums depend on the order of the 1/3 and 2/3 terms, so cache by the matching positions.
    by_positions: dict[tuple[int, tuple[int, ...]], float] = {}
    scores = []
    for qid, pred in predictions.items():
        pred_norm, refs = prepare(pred, answers[qid], partial, full)
        matches = refs.count(pred_norm)
        if matches == 0:
            scores.append(0.0)
        elif matches > 3:
            scores.append(1.0)
        else:
            key = (len(refs), tuple(i for i, ref in enumerate(refs) if ref == pred_norm))
            score = by_positions.get(key)
            if score is None:
                score = by_positions[key] = _leave_one_out(*key)
            scores.append(score)
    return scores


def _leave_one_out(n: int, positions: tuple[int, ...]) -> float:
    matches = len(positions)
    terms = [min(1.0, (matches - (i in positions)) / 3) for i in range(n)]
    return sum(terms) / n


def vqa_accuracy(
    predictions: Mapping[int, str],
    answers: Mapping[int, Sequence[str]],
    variant: str = "official",
) -> float:
    """Mean VQA accuracy x100 (unrounded) over the question ids of `predictions`."""
    scores = vqa_scores(predictions, answers, variant)
    return 100 * sum(scores) / len(scores)
