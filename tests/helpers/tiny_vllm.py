"""A tiny random LLaVA that transformers and vLLM both load, built offline in about a second.

It differs from tiny_hf.build_llava in what vLLM's CPU build needs: a text head size of 32 (its CPU attention takes
32 and up) and the vision weights under `vision_tower.vision_model.` (the hub checkpoints' layout, which vLLM's
loader expects; transformers 5 saves them one level up and loads either).
"""

from pathlib import Path

from helpers.tiny_hf import CHAT_TEMPLATE, build_tokenizer


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
    """LLaVA: a 2-layer CLIP on 16x16 images (4 image tokens) and a 2-layer Llama of hidden size 64, 2 heads of 32."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    template = CHAT_TEMPLATE.replace("{{ eot }}", "</s>") if chat else None
    tokenizer = build_tokenizer([], template)
    ids = tokenizer.convert_tokens_to_ids
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        initializer_range=0.2,
        pad_token_id=ids("[PAD]"),
        bos_token_id=ids("<s>"),
        eos_token_id=ids("</s>"),
    )
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=16, patch_size=8, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).eval().save_pretrained(out)
    _rename_vision_keys(out / "model.safetensors")
    image_processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=template)
    processor.save_pretrained(out)
    return out
