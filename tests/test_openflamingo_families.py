"""The checkpoint layout of each LM family OpenFlamingo released: open_flamingo's own factory (which finds the decoder
blocks by class name) writes the checkpoint of a tiny random model of that family, and model=openflamingo loads it
strictly, each trained tensor to its place. And OpenFlamingo's two other families through model=hf: IDEFICS (v1) and
BLIP-2 on tiny random configs."""

import json
from pathlib import Path

import pytest

pytest.importorskip("open_flamingo.src.flamingo", reason="model=openflamingo: bash scripts/install_openflamingo.sh")
import torch  # noqa: E402
from helpers import tiny_openflamingo  # noqa: E402
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


def _tiny_idefics(out: Path) -> Path:
    """IDEFICS (v1), OpenFlamingo's other interleaved family, as a tiny random checkpoint with its processor."""
    from helpers import tiny_hf
    from transformers import IdeficsConfig, IdeficsForVisionText2Text, IdeficsImageProcessor, IdeficsProcessor

    tok = tiny_hf.build_tokenizer(["<fake_token_around_image>", "<end_of_utterance>"], None)
    config = IdeficsConfig(vocab_size=len(tok), additional_vocab_size=0, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4, cross_layer_interval=1,
                           vision_config={"embed_dim": 32, "image_size": 32, "patch_size": 8, "num_hidden_layers": 2,
                                          "num_attention_heads": 4, "intermediate_size": 64},
                           perceiver_config={"use_resampler": False}, pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    IdeficsForVisionText2Text(config).save_pretrained(out)
    IdeficsProcessor(IdeficsImageProcessor(image_size=32), tok).save_pretrained(out)
    return out


def test_idefics_v1_runs_few_shot_through_model_hf_with_the_flamingo_prompt(tmp_path: Path) -> None:
    from helpers import cli

    path = _tiny_idefics(tmp_path / "idefics")

    proc = cli(["evalrunner", "dataset=vqav2", "protocol=openflamingo", "model=hf", f"model.path={path}",
                "model.chat_template=false", "shots=2", "num_samples=3", f"hydra.run.dir={tmp_path / 'run'}"],
               tmp_path)

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads((tmp_path / "run" / "predictions.json").read_text())) == 3


def test_blip2_loads_with_the_image_text_to_text_auto_class(tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText, Blip2Config, OPTConfig

    config = Blip2Config(vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                        "num_attention_heads": 4, "image_size": 32, "patch_size": 8},
                         qformer_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4,
                                         "intermediate_size": 64, "encoder_hidden_size": 32, "vocab_size": 64},
                         text_config=OPTConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, ffn_dim=64,
                                               num_attention_heads=4, word_embed_proj_dim=32).to_dict(),
                         num_query_tokens=4)
    AutoModelForImageTextToText.from_config(config).save_pretrained(tmp_path / "blip2")

    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "blip2")

    assert type(model).__name__ == "Blip2ForConditionalGeneration"
