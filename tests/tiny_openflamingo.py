"""A tiny random OpenFlamingo, built offline in a few seconds: a 2-layer Llama (tests/tiny_hf.py's tokenizer), a
2-layer open_clip ViT from a config JSON (random weights, saved to a file so every copy has them), and a checkpoint.pt with the keys OpenFlamingo's
training saves (its trainable tensors: perceiver, gated cross-attention, embeddings).

The checkpoint's cross-attention gates are opened (OpenFlamingo starts them at 0, which would hide the images).
"""

import json
from pathlib import Path
from typing import Any

VIT = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
       "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}


def build_parts(out: Path, seed: int = 0) -> dict[str, str]:
    """The LM folder and the ViT config; returns the model.* overrides that name them."""
    import tiny_hf
    import torch
    from transformers import LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_hf.build_tokenizer([], None)
    tokenizer.save_pretrained(out / "lm")
    config = tiny_hf._llama(len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)
    config.tie_word_embeddings = True  # the added tokens' output rows then come from the checkpoint, as for MPT
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(out / "lm")
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


def build_openflamingo(out: Path, seed: int = 0) -> dict[str, str]:
    """Everything `model=openflamingo` needs; returns its model.* overrides (checkpoint included)."""
    import torch

    parts = build_parts(out, seed)
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
