"""The reference implementations our metrics are held against, each wrapped at exactly one place.

The modules are loaded by file path: the packages' __init__ files import heavy dependencies
(jax for axlearn, torch and friends for lavis and open_flamingo) that the metric files never use.
No stubs are needed: each metric file imports only the standard library (OpenFlamingo's ok_vqa_utils.py
also nltk and inflection, our okvqa extra).
"""

import contextlib
import importlib.util
import io
import os
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any


def _package_dir(package: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{package} is not installed (pip install --no-deps {package})")
    return list(spec.submodule_search_locations)[0]


def _load(name: str, package: str, relative_path: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    path = os.path.join(_package_dir(package), relative_path)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def axlearn_vqa() -> ModuleType:
    return _load("oracle_axlearn_metrics_vqa", "axlearn", "vision/metrics_vqa.py")


def lavis_vqa_eval() -> ModuleType:
    return _load("oracle_lavis_vqa_eval", "lavis", "common/vqa_tools/vqa_eval.py")


def lavis_vqa() -> ModuleType:
    return _load("oracle_lavis_vqa", "lavis", "common/vqa_tools/vqa.py")


def openflamingo_vqa_metric() -> ModuleType:
    return _load("oracle_open_flamingo_vqa_metric", "open_flamingo", "eval/vqa_metric.py")


def openflamingo_ok_vqa() -> ModuleType:
    """postprocess_ok_vqa_generation and OKVQAStemmer; unlike the others it imports nltk and inflection."""
    return _load("oracle_open_flamingo_ok_vqa_utils", "open_flamingo", "eval/ok_vqa_utils.py")


def mmf_m4c_evaluators() -> ModuleType:
    return _load("oracle_mmf_m4c_evaluators", "mmf", "utils/m4c_evaluators.py")


def m4c_textvqa(predictions: Mapping[int, str], answers: Mapping[int, Sequence[str]]) -> tuple[float, list[float]]:
    """TextVQA's TextVQAAccuracyEvaluator: the overall accuracy (a fraction) and each question's score."""
    evaluator = mmf_m4c_evaluators().TextVQAAccuracyEvaluator()
    entries = [{"pred_answer": pred, "gt_answers": list(answers[qid])} for qid, pred in predictions.items()]
    return evaluator.eval_pred_list(entries), [evaluator.eval_pred_list([entry]) for entry in entries]


def axlearn_scores(predictions: Mapping[int, str], answers: Mapping[int, Sequence[str]]) -> list[float]:
    score = axlearn_vqa().vqa_accuracy_score
    return [score(answer=pred, gt_answers=list(answers[qid])) for qid, pred in predictions.items()]


def vqa_api_inputs(
    predictions: Mapping[int, str], answers: Mapping[int, Sequence[str]], with_answer_ids: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Annotation and result records shaped like the VQAv2 json files (VizWiz has no answer_id)."""
    annotations = []
    for qid in predictions:
        human = [{"answer": a, "answer_confidence": "yes"} for a in answers[qid]]
        if with_answer_ids:
            for i, record in enumerate(human):
                record["answer_id"] = i + 1
        annotations.append(
            {"question_id": qid, "image_id": qid, "question_type": "what", "answer_type": "other", "answers": human}
        )
    results = [{"question_id": qid, "answer": pred} for qid, pred in predictions.items()]
    return annotations, results


def _run_vqa_eval(vqa_class: type, eval_class: type, annotations: list, results: list) -> Any:
    """Builds vqa/vqaRes as VQA.__init__ and loadRes would from files, then runs VQAEval.evaluate."""
    with contextlib.redirect_stdout(io.StringIO()):
        questions = {
            "questions": [
                {"question_id": a["question_id"], "image_id": a["image_id"], "question": "?"} for a in annotations
            ]
        }
        vqa = vqa_class()
        vqa.dataset, vqa.questions = {"annotations": annotations}, questions
        vqa.createIndex()
        for result in results:
            result["image_id"] = vqa.qa[result["question_id"]]["image_id"]
            result["question_type"] = vqa.qa[result["question_id"]]["question_type"]
        vqa_res = vqa_class()
        vqa_res.dataset["annotations"], vqa_res.questions = results, questions
        vqa_res.createIndex()
        evaluator = eval_class(vqa, vqa_res, n=2)
        evaluator.evaluate([r["question_id"] for r in results])
    return evaluator


def lavis_evaluator(annotations: list, results: list) -> Any:
    return _run_vqa_eval(lavis_vqa().VQA, lavis_vqa_eval().VQAEval, annotations, results)


def openflamingo_evaluator(annotations: list, results: list) -> Any:
    module = openflamingo_vqa_metric()
    return _run_vqa_eval(module.VQA, module.VQAEval, annotations, results)


def pycocoevalcap_cider_run(
    predictions: Mapping[int, str], references: Mapping[int, Sequence[str]]
) -> tuple[dict[int, list[str]], dict[int, list[str]], float, list[float]]:
    """PTBTokenizer + Cider as pycocoevalcap's COCOEvalCap.evaluate runs them, on image ids in predictions' order.

    Returns the tokenized references and predictions, the score and the per-image scores, unscaled.
    """
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts = {i: [{"caption": c} for c in references[i]] for i in predictions}
    res = {i: [{"caption": predictions[i]}] for i in predictions}
    with contextlib.redirect_stderr(io.StringIO()):
        tokenizer = PTBTokenizer()
        gts_tokens, res_tokens = tokenizer.tokenize(gts), tokenizer.tokenize(res)
    score, scores = Cider().compute_score(gts_tokens, res_tokens)
    return gts_tokens, res_tokens, float(score), [float(s) for s in scores]


def pycocoevalcap_cider(
    predictions: Mapping[int, str], references: Mapping[int, Sequence[str]]
) -> tuple[float, list[float]]:
    """PTBTokenizer + Cider as pycocoevalcap's COCOEvalCap.evaluate runs them, scaled x100."""
    _, _, score, scores = pycocoevalcap_cider_run(predictions, references)
    return score * 100, [s * 100 for s in scores]


def pycocoevalcap_tokenize(texts: Sequence[str]) -> list[str]:
    """The Java PTBTokenizer plus punctuation removal, one text per key."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    captions = {i: [{"caption": text}] for i, text in enumerate(texts)}
    tokenized = PTBTokenizer().tokenize(captions)
    return [tokenized[i][0] for i in range(len(texts))]


def sklearn_roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """scikit-learn's roc_auc_score (the test extra); HatefulMemes' official metric, as OpenFlamingo calls it."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(list(labels), list(scores)))
