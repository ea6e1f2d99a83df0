import pytest
from helpers import compose_cfg
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf


@pytest.mark.parametrize("dataset", ["coco", "vqav2"])
@pytest.mark.parametrize("model", ["nearest", "hf"])
def test_every_dataset_and_model_option_composes(dataset: str, model: str) -> None:
    cfg = compose_cfg([f"dataset={dataset}", f"model={model}"])

    assert cfg.dataset.name == dataset
    assert cfg.model.name == model
    assert cfg.query_set_size == 2048


def test_generation_defaults_follow_openflamingo() -> None:
    coco, vqa = compose_cfg(["dataset=coco"]).dataset.generation, compose_cfg(["dataset=vqav2"]).dataset.generation

    assert (coco.max_new_tokens, coco.num_beams, coco.length_penalty) == (20, 3, 0.0)
    assert (vqa.max_new_tokens, vqa.num_beams, vqa.length_penalty) == (5, 3, 0.0)


def test_a_wrongly_typed_value_fails_at_composition() -> None:
    with pytest.raises(ConfigCompositionException):
        compose_cfg(["shots=four"])


def test_hf_model_path_is_required() -> None:
    cfg = compose_cfg(["model=hf"])

    assert OmegaConf.is_missing(cfg.model, "path")


@pytest.mark.parametrize("override", ["dataset.generation.num_beams=three", "dataset.no_such_key=1"])
def test_a_dataset_key_of_the_wrong_type_or_name_fails_at_composition(override: str) -> None:
    with pytest.raises(ConfigCompositionException):
        compose_cfg(["dataset=vqav2", override])
