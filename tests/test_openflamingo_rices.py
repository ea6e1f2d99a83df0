"""RICES as OpenFlamingo computes it: open_clip features (rices.backend=open_clip), and the demo pool's features
imported from the file OpenFlamingo's own RICES class computes (rices.import_features), giving the same demos."""

import json
import sys
from pathlib import Path

import pytest
from helpers import SAMPLE, cli

pytest.importorskip("open_clip", reason="rices.backend=open_clip: bash scripts/install_openflamingo.sh")
import torch  # noqa: E402
from helpers import tiny_openflamingo  # noqa: E402

from evalrunner.demos.open_clip_features import imported  # noqa: E402
from evalrunner.errors import UserError  # noqa: E402


def test_imported_features_are_mapped_onto_the_pool_by_id(tmp_path: Path) -> None:
    feats = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    torch.save({"ids": [30, 10, 20], "features": feats}, tmp_path / "f.pkl")

    rows = imported(str(tmp_path / "f.pkl"), [10, 20, 30])

    assert torch.allclose(torch.from_numpy(rows), torch.tensor([[0.0, 1.0], [0.6, 0.8], [1.0, 0.0]]))


def test_a_pool_id_without_an_imported_row_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    torch.save({"ids": [1, 2], "features": torch.ones(2, 4)}, tmp_path / "f.pkl")

    with pytest.raises(UserError, match=r"rices.import_features=.*1 demo pool id\(s\) have no row, first 3"):
        imported(str(tmp_path / "f.pkl"), [1, 2, 3])


def test_a_feature_tensor_of_another_length_than_the_pool_is_an_error(tmp_path: Path) -> None:
    torch.save(torch.ones(5, 4), tmp_path / "coco.pkl")

    with pytest.raises(UserError, match=r"\(5, 4\) features for a demo pool of 3 examples"):
        imported(str(tmp_path / "coco.pkl"), [1, 2, 3])


def _openflamingo_features(parts: dict[str, str], out: Path) -> Path:
    """coco.pkl as OpenFlamingo's cache_rices_features.py writes it: its RICES class over its CaptionDataset's train
    split (Karpathy images with split "train", in file order)."""
    import open_clip
    import open_flamingo
    from PIL import Image

    sys.path.insert(0, str(Path(open_flamingo.__file__).parent / "eval"))  # rices.py imports its sibling utils
    try:
        from rices import RICES
    finally:
        sys.path.pop(0)
    open_clip.add_model_config(parts["vision_encoder"])
    images = json.loads((SAMPLE / "coco" / "dataset_coco.json").read_text())["images"]
    train = [{"image": Image.open(SAMPLE / "coco" / im["filepath"] / im["filename"])}
             for im in images if im["split"] == "train"]
    rices = RICES(train, "cpu", 8, vision_encoder_path=Path(parts["vision_encoder"]).stem,
                  vision_encoder_pretrained=parts["vision_pretrained"])
    torch.save(rices.features, out / "coco.pkl")
    return out / "coco.pkl"


@pytest.mark.slow
def test_demos_from_openflamingos_feature_file_equal_those_from_open_clip_features_computed_here(
    tmp_path: Path,
) -> None:
    parts = tiny_openflamingo.build_parts(tmp_path / "model")
    rices = ["dataset=coco", "shots=2", "num_samples=5", "demo_selection=rices", "rices.backend=open_clip",
             f"rices.model={parts['vision_encoder']}", f"rices.pretrained={parts['vision_pretrained']}",
             f"rices.cache_dir={tmp_path / 'cache'}"]
    pkl = _openflamingo_features(parts, tmp_path)

    computed = cli(["evalrunner", *rices, f"hydra.run.dir={tmp_path / 'computed'}"], tmp_path)
    from_file = cli(["evalrunner", *rices, f"rices.import_features={pkl}", f"hydra.run.dir={tmp_path / 'file'}"],
                    tmp_path)

    assert computed.returncode == 0, computed.stderr[-2000:]
    assert from_file.returncode == 0, from_file.stderr[-2000:]
    demos = json.loads((tmp_path / "computed" / "demos.json").read_text())
    assert json.loads((tmp_path / "file" / "demos.json").read_text()) == demos
    assert len(demos) == 5 and all(len(d) == 2 for d in demos.values())


@pytest.mark.slow
def test_an_imagenet_job_retrieves_class_conditional_rices_demos_of_the_asked_classes(tmp_path: Path) -> None:
    parts = tiny_openflamingo.build_parts(tmp_path / "model")

    proc = cli(["evalrunner", "dataset=imagenet", "model=nearest", "shots=3", "num_samples=4", "demo_selection=rices",
                "num_classes_in_demos=2", "rices.backend=open_clip", f"rices.model={parts['vision_encoder']}",
                f"rices.pretrained={parts['vision_pretrained']}", f"rices.cache_dir={tmp_path / 'cache'}",
                f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)

    assert proc.returncode == 0, proc.stderr[-2000:]
    demos = json.loads((tmp_path / "run" / "demos.json").read_text())
    assert len(demos) == 4 and all(len(d) == 3 for d in demos.values())
