"""A tiny, randomly initialised CLIP checkpoint (model + image processor), built offline in well under a second.

Its embeddings carry no meaning, but they are spread out enough that RICES has a real ranking to get right.
"""

from pathlib import Path


def build_clip(out: Path, image_size: int = 32, seed: int = 0) -> Path:
    """CLIP with a 2-layer ViT on `image_size` images (8x8 patches) and a 2-layer text tower, 16-d embeddings."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    config = CLIPConfig(
        text_config={"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": image_size, "patch_size": 8},
        projection_dim=16,
        initializer_range=0.5,  # wide weights keep random embeddings apart, so similarities rarely near-tie
    )
    torch.manual_seed(seed)
    CLIPModel(config).eval().save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": image_size},
                       crop_size={"height": image_size, "width": image_size}).save_pretrained(out)
    return out
