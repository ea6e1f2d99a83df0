"""A tiny random LLaVA that transformers and vLLM both load, built offline in about a second.

It differs from tiny_hf.build_llava in what vLLM's CPU build needs: a text head size of 32 (its CPU attention takes
32 and up) and the vision weights under `vision_tower.vision_model.` (the hub checkpoints' layout, which vLLM's
loader expects; transformers 5 saves them one level up and loads either).
"""

from pathlib import Path

from helpers.tiny_hf import build_llava


def _rename_vision_keys(weights: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(weights)
    renamed = {}
    for key, value in tensors.items():
        head, sep, tail = key.partition("vision_tower.")
        if sep and not tail.startswith("vision_model."):
            key = f"{head}vision_tower.vision_model.{tail}"
        renamed[key] = value
    save_file(renamed, weights, metadata={"format": "pt"})


def build_llava_vllm(out: Path, chat: bool = True) -> Path:
    """tiny_hf's LLaVA with a Llama of hidden size 64, 2 heads of 32 (1 KV head), its vision keys renamed."""
    build_llava(out, chat, hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1,
                max_position_embeddings=1024)
    _rename_vision_keys(out / "model.safetensors")
    return out
