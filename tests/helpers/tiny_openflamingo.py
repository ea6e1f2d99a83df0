"""A tiny random OpenFlamingo, built offline in a few seconds: a 2-layer Llama (tests/helpers/tiny_hf.py's tokenizer), a
2-layer open_clip ViT from a config JSON (random weights, saved to a file so every copy has them), and a
checkpoint.pt with the keys OpenFlamingo's training saves (its trainable tensors: perceiver, gated cross-attention,
embeddings).

The checkpoint's cross-attention gates are opened (OpenFlamingo starts them at 0, which would hide the images)."""

import json
from pathlib import Path
from typing import Any

VIT = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
       "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}


def lm_config(family: str, tokenizer: Any) -> Any:
    """A tiny config of each LM family OpenFlamingo's releases use (tied embeddings: the added tokens' output rows
    then come from the checkpoint, as for MPT)."""
    from transformers import GPTNeoXConfig, MptConfig, OPTConfig

    from helpers import tiny_hf

    ids = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
           "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    if family == "llama":
        config = tiny_hf._llama(len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id,
                                tokenizer.eos_token_id)
    elif family == "gpt_neox":
        config = GPTNeoXConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                               max_position_embeddings=512, **ids)
    elif family == "mpt":
        config = MptConfig(d_model=32, n_heads=4, n_layers=2, max_seq_len=512, **ids)
    elif family == "opt":
        config = OPTConfig(hidden_size=32, num_hidden_layers=2, ffn_dim=64, num_attention_heads=4,
                           word_embed_proj_dim=32, max_position_embeddings=512, **ids)
    else:
        raise ValueError(family)
    config.tie_word_embeddings = True
    return config


def build_parts(out: Path, seed: int = 0, family: str = "llama") -> dict[str, str]:
    """The LM folder and the ViT config; returns the model.* overrides that name them."""
    import torch
    from transformers import AutoModelForCausalLM

    from helpers import tiny_hf

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_hf.build_tokenizer([], None)
    tokenizer.save_pretrained(out / "lm")
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(lm_config(family, tokenizer)).save_pretrained(out / "lm")
    (out / "tiny-of-vit.json").write_text(json.dumps(VIT))
    # Built with pretrained=None, then saved: the frozen ViT is in no checkpoint.pt, and every copy must be the same.
    import open_clip

    open_clip.add_model_config(out / "tiny-of-vit.json")
    clip = open_clip.create_model("tiny-of-vit", pretrained=None)
    torch.save(clip.state_dict(), out / "tiny-of-vit.pt")
    return {"vision_encoder": str(out / "tiny-of-vit.json"), "vision_pretrained": str(out / "tiny-of-vit.pt"),
            "lm_path": str(out / "lm"),
            "tokenizer_path": str(out / "lm"), "cross_attn_every_n_layers": "1"}


def reference_model(parts: dict[str, str]) -> tuple[Any, Any, Any]:
    """(model, image_processor, tokenizer) from open_flamingo's own factory, as its eval builds them."""
    import open_clip
    from open_flamingo import create_model_and_transforms

    open_clip.add_model_config(parts["vision_encoder"])
    return create_model_and_transforms(Path(parts["vision_encoder"]).stem, parts["vision_pretrained"], parts["lm_path"],
                                       parts["tokenizer_path"],
                                       cross_attn_every_n_layers=int(parts["cross_attn_every_n_layers"]))


def trainable_state(model: Any) -> dict[str, Any]:
    """What OpenFlamingo's training saves (train_utils.filter_state_dict_to_trainable): no frozen backbone tensor,
    the gated layers under the decoder's path only, and the embeddings."""
    trained = {id(p) for part in (model.perceiver, model.lang_encoder.gated_cross_attn_layers,
                                  model.lang_encoder.get_input_embeddings()) for p in part.parameters()}
    return {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()
            if id(v) in trained and "old_decoder_blocks" not in k and not k.startswith("lang_encoder.gated_cross")}


def build_openflamingo(out: Path, seed: int = 0, family: str = "llama") -> dict[str, str]:
    """Everything `model=openflamingo` needs; returns its model.* overrides (checkpoint included)."""
    import torch

    parts = build_parts(out, seed, family)
    torch.manual_seed(seed + 1)
    model, _, _ = reference_model(parts)
    with torch.no_grad():
        for layer in model.lang_encoder.gated_cross_attn_layers:
            layer.attn_gate.fill_(0.8)
            layer.ff_gate.fill_(0.8)
    torch.save(trainable_state(model), out / "checkpoint.pt")
    return {**parts, "checkpoint": str(out / "checkpoint.pt")}


def overrides(parts: dict[str, str]) -> list[str]:
    return ["model=openflamingo", *(f"model.{k}={v}" for k, v in parts.items())]
