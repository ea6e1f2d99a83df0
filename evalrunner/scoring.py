"""A job's test items and metric without its model: what rescoring and importing share with the job itself."""

from collections.abc import Mapping

from omegaconf import DictConfig

from evalrunner.datasets.base import Dataset, Item, Score, prediction_records
from evalrunner.errors import UserError


def job_items(cfg: DictConfig) -> tuple[Dataset, list[Item]]:
    """The dataset and the test items a job with this config scores, built exactly as the job builds them."""
    from evalrunner import datasets
    from evalrunner.datasets import index
    from evalrunner.demos.random import select_test_items

    dataset = datasets.build(cfg.dataset, datasets.data_root(cfg), index.folder(cfg.index_dir))
    if dataset.task not in ("vqa", "caption"):
        raise UserError(f"dataset={cfg.dataset.name}: only VQA and caption jobs can be rescored or imported; "
                        f"a {dataset.task} job's predictions are rankings, scored by the job itself")
    return dataset, select_test_items(dataset.test_items(), cfg.num_samples, cfg.seed)


def record_key(dataset: Dataset, items: list[Item]) -> tuple[str, dict[str, int]]:
    """The key naming each item in predictions.json (question_id, image_id, VizWiz's image) and its value, as a
    string, -> the item's id."""
    ordered = sorted(items, key=lambda it: it.id)
    records = prediction_records(dataset, {it.id: "" for it in ordered})
    [key] = [k for k in records[0] if k != dataset.text_key] if records else [dataset.id_key]
    return key, {str(r[key]): it.id for r, it in zip(records, ordered)}


def check_covered(predictions: Mapping[int, str], items: list[Item], source: str) -> None:
    missing = [it.id for it in items if it.id not in predictions]
    if missing:
        raise UserError(f"{source}: {len(missing)} of the job's {len(items)} test items have no prediction, "
                        f"first id {missing[0]}; give a prediction for every test item (check num_samples)")


def score_job(dataset: Dataset, items: list[Item], predictions: Mapping[int, str]) -> Score:
    """The dataset's score of the predictions, fed in test-item order as the job feeds them."""
    return dataset.score({it.id: predictions[it.id] for it in items}, items)
