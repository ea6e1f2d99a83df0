"""Tiny, randomly initialised Hugging Face vision-language checkpoints, built offline in well under a second.

Their outputs are noise; they exist so the adapter's loading, prompting, padding and decoding run for real.
"""

import json
from pathlib import Path

import evalrunner

SAMPLE = Path(evalrunner.__file__).parent / "sample_data"
SPECIALS = ["[PAD]", "[UNK]", "<s>", "</s>", "<image>"]
IDEFICS_SPECIALS = ["<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]
TEMPLATE_WORDS = "USER ASSISTANT User Assistant Question Short answer Output : . ? , Answer Write a short caption for"

# A chat template in the shape real ones have: turns with role prefixes, images as placeholders in user content.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | upper }}:"
    "{% if m['content'] is string %} {{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %} {{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ eot }}\n{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def sample_corpus() -> list[str]:
    """Every question, answer and caption of the bundled sample data: the tiny tokenizer knows all their words."""
    lines = [TEMPLATE_WORDS]
    karpathy = json.loads((SAMPLE / "coco" / "dataset_coco.json").read_text())
    lines += [s["raw"] for img in karpathy["images"] for s in img["sentences"]]
    for split in ("train2014", "val2014"):
        questions = json.loads((SAMPLE / "vqav2" / f"v2_OpenEnded_mscoco_{split}_questions.json").read_text())
        lines += [q["question"] for q in questions["questions"]]
        annotations = json.loads((SAMPLE / "vqav2" / f"v2_mscoco_{split}_annotations.json").read_text())
        lines += [a["answer"] for ann in annotations["annotations"] for a in ann["answers"]]
    return lines


def build_tokenizer(
    extra_specials: list[str], chat_template: str | None, bos: str = "<s>"
):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces, no prefix ever appears
    tok.train_from_iterator(sample_corpus(), trainers.WordLevelTrainer(special_tokens=SPECIALS + extra_specials))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token=bos, eos_token="</s>"
    )
    fast.add_special_tokens({"additional_special_tokens": ["<image>", *extra_specials]})
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


def _llama(vocab_size: int, pad_id: int, bos_id: int, eos_id: int, **sizes: int):  # -> LlamaConfig
    from transformers import LlamaConfig

    return LlamaConfig(**{
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "initializer_range": 0.2,
        "pad_token_id": pad_id,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        **sizes,
    })


def build_llava(out: Path, chat: bool = True, **text_sizes: int) -> Path:
    """LLaVA: a 2-layer CLIP on 16x16 images (4 patches of 8x8, so 4 image tokens) and a 2-layer Llama, whose
    sizes `text_sizes` may change (LlamaConfig's keyword arguments)."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    template = CHAT_TEMPLATE.replace("{{ eot }}", "</s>") if chat else None
    tokenizer = build_tokenizer([], template)
    ids = tokenizer.convert_tokens_to_ids
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=16,
        patch_size=8,
        projection_dim=32,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_llama(len(tokenizer), ids("[PAD]"), ids("<s>"), ids("</s>"), **text_sizes),
        image_token_index=ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).eval().save_pretrained(out)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=template,
    )
    processor.save_pretrained(out)
    return out



def _vision(image_size: int) -> dict[str, int]:
    """A 2-layer vision encoder with 8x8 patches."""
    return {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "image_size": image_size, "patch_size": 8}

def build_idefics3(out: Path, chat: bool = True) -> Path:
    """Idefics3 (the SmolVLM family): a 2-layer SigLIP-like encoder on 32x32 images, pixel shuffle by 2, so 4 image
    tokens, no image splitting, and a 2-layer Llama."""
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    template = CHAT_TEMPLATE.replace("{{ eot }}", "<end_of_utterance>") if chat else None
    tokenizer = build_tokenizer(IDEFICS_SPECIALS, template)
    ids = tokenizer.convert_tokens_to_ids
    vision = _vision(image_size=32)
    config = Idefics3Config(
        vision_config=vision,
        text_config=_llama(len(tokenizer), ids("[PAD]"), ids("<s>"), ids("</s>")).to_dict(),
        image_token_id=ids("<image>"),
        scale_factor=2,
        pad_token_id=ids("[PAD]"),
    )
    torch.manual_seed(0)
    Idefics3ForConditionalGeneration(config).eval().save_pretrained(out)
    image_processor = Idefics3ImageProcessor(
        do_image_splitting=False, size={"longest_edge": 32}, max_image_size={"longest_edge": 32}
    )
    processor = Idefics3Processor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4, chat_template=template
    )
    processor.save_pretrained(out)
    return out


def build_paligemma(out: Path) -> Path:
    """PaliGemma: a 2-layer SigLIP on 16x16 images (4 patches of 8x8, so 4 image tokens) and a 2-layer Gemma; no chat
    template, as in the pretrained checkpoints."""
    import torch
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessor,
    )

    tokenizer = build_tokenizer(["<bos>"], None, bos="<bos>")
    image_processor = SiglipImageProcessor(size={"height": 16, "width": 16})
    image_processor.image_seq_length = 4
    # The processor adds PaliGemma's location and segmentation tokens to the tokenizer: size the model after it.
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    ids = tokenizer.convert_tokens_to_ids
    text = GemmaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=512,
        initializer_range=0.2,
        pad_token_id=ids("[PAD]"),
        bos_token_id=ids("<bos>"),
        eos_token_id=ids("</s>"),
    )
    vision = _vision(image_size=16)
    config = PaliGemmaConfig(
        vision_config=vision,
        text_config=text.to_dict(),
        image_token_index=ids("<image>"),
        vocab_size=len(tokenizer),
        projection_dim=32,
        hidden_size=32,
        pad_token_id=ids("[PAD]"),
    )
    torch.manual_seed(0)
    PaliGemmaForConditionalGeneration(config).eval().save_pretrained(out)
    processor.save_pretrained(out)
    return out
