"""The checkpoint layout of each LM family OpenFlamingo released: open_flamingo's own factory (which finds the decoder
blocks by class name) writes the checkpoint of a tiny random model of that family, and model=openflamingo loads it
strictly, each trained tensor to its place."""

from pathlib import Path

import pytest

pytest.importorskip("open_flamingo.src.flamingo", reason="model=openflamingo: bash scripts/install_openflamingo.sh")
import torch  # noqa: E402
import tiny_openflamingo  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from evalrunner.models import openflamingo_build  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("family", ["llama", "gpt_neox", "mpt", "opt"])
def test_an_openflamingo_checkpoint_of_each_lm_family_loads_strictly_with_every_tensor_in_place(
    tmp_path: Path, family: str
) -> None:
    parts = tiny_openflamingo.build_openflamingo(tmp_path, family=family)
    saved = torch.load(parts["checkpoint"])

    built = openflamingo_build.build(OmegaConf.create({**parts, "precision": "fp32", "trust_remote_code": False}),
                                     torch.device("cpu"))

    own = built.model.state_dict()
    layers = f"lang_encoder.{openflamingo_build.DECODER_LAYERS[family]}."
    gated = [k for k in saved if ".gated_cross_attn_layer." in k]
    assert gated and all(k.startswith(layers) for k in gated)
    assert all(torch.equal(own[k], v) for k, v in saved.items())
