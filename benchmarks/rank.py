"""Ranks ImageNet's 1,000 class names after few-shot prompts three ways, checks they agree, and times them on CPU.

Run as `python benchmarks/rank.py [--images 1] [--candidates 1000] [--threads 1]` (`--smoke`: 40 names, one
image, for CI).
The checkpoint is a LLaVA built offline with random weights, small but not trivial: a 4-layer Llama (hidden 256,
8 heads, 4 KV heads) behind a 2-layer CLIP on 32x32 images (16 tokens per image), and a sub-word vocabulary
learnt from the 1,000 names, so that the names split into tokens as with a real tokenizer. Each prompt has four
demo images and the query image, about 110 tokens, as a 4-shot ImageNet prompt in OpenFlamingo's format.

The three ways, each per prompt (one image at a time), in float32:
- ours: `evalrunner.models.hf_rank.candidate_logprobs`, the prompt once, then chunks of candidates against its
  KV cache (model.rank_chunk=64, the default);
- uncached: one plain forward pass over prompt + candidate for every candidate;
- openflamingo: its `get_rank_classifications` loop, the prompt once with its KV cache, then each class name fed
  one token at a time against that cache, every token of it, class after class (the cache cut back to the prompt
  after each class).
All three must give the same log-likelihoods (within 1e-4, the check exits 1 otherwise). Times are wall clock,
seconds per image, with one torch thread by default (steadier on a shared machine).
"""

import argparse
import inspect
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from evalrunner.datasets.imagenet import STANDARD_NAMES
from evalrunner.models.hf_rank import candidate_logprobs

SHOTS = 4
VOCAB = 1200
TOLERANCE = 1e-4


def build_checkpoint(out: Path, names: list[str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    specials = ["[PAD]", "[UNK]", "<s>", "</s>", "<image>"]
    # Byte-pair merges learnt from the names with a small vocabulary, so a name splits into sub-words as a real
    # language model's tokenizer splits it (about 3 tokens per name here).
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(names + ["Output :"], trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                                        eos_token="</s>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    ids = tokenizer.convert_tokens_to_ids
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                       num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
                       pad_token_id=ids("[PAD]"), bos_token_id=ids("<s>"), eos_token_id=ids("</s>"))
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=64)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).eval().save_pretrained(out)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                   vision_feature_select_strategy="default", num_additional_image_tokens=1).save_pretrained(out)
    return out


def prompts(names: list[str], count: int) -> tuple[list[str], list[list[np.ndarray]]]:
    rng = np.random.default_rng(0)
    texts, images = [], []
    for _ in range(count):
        demos = rng.choice(len(names), SHOTS, replace=False)
        texts.append("\n".join(f"<image>Output:{names[d]}" for d in demos) + "\n<image>Output:")
        images.append([rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(SHOTS + 1)])
    return texts, images


def uncached(model, inputs: dict, candidates: list[list[int]]) -> np.ndarray:
    n = inputs["input_ids"].shape[1]
    out = np.zeros(len(candidates))
    for j, c in enumerate(candidates):
        ids = torch.cat([inputs["input_ids"], torch.tensor([c])], dim=1)
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=inputs["pixel_values"]).logits
        logprobs = logits[0].float().log_softmax(dim=-1)
        out[j] = sum(float(logprobs[n - 1 + t, tok]) for t, tok in enumerate(c))
    return out


def openflamingo_loop(model, inputs: dict, candidates: list[list[int]]) -> np.ndarray:
    first = model(**inputs, use_cache=True)
    # transformers 5.20 renamed past_key_values to cache, in the forward's arguments and its output alike
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    cache, n = getattr(first, name), inputs["input_ids"].shape[1]
    last = first.logits[0, -1].float().log_softmax(dim=-1)
    out = np.zeros(len(candidates))
    for j, c in enumerate(candidates):
        # As OpenFlamingo: every token of the name is fed, one forward pass each (the last one's logits unused).
        steps = [last]
        for tok in c:
            step = model(input_ids=torch.tensor([[tok]]), **{name: cache}, use_cache=True)
            steps.append(step.logits[0, -1].float().log_softmax(dim=-1))
        total = sum(float(steps[t][tok]) for t, tok in enumerate(c))
        grown = cache.get_seq_length() - n
        if grown:
            cache.crop(-grown)  # transformers' caches grow in place; OpenFlamingo's tuples did not
        out[j] = total
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1, help="prompts ranked (default %(default)s)")
    parser.add_argument("--candidates", type=int, default=1000, help="class names ranked (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default %(default)s)")
    parser.add_argument("--smoke", action="store_true", help="40 names, one image: under a minute, equality checked")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.images, args.candidates = 1, 40
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    table = [line.split("\t")[1] for line in STANDARD_NAMES.read_text(encoding="utf-8").splitlines()]
    names = list(dict.fromkeys(table))
    with tempfile.TemporaryDirectory() as tmp:
        path = build_checkpoint(Path(tmp), names)
        processor = AutoProcessor.from_pretrained(path)
        model = LlavaForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()
    tokenizer = processor.tokenizer
    # Every ImageNet-th name, so a smoke run still has names of every length.
    chosen = names[:: max(1, len(names) // args.candidates)][: args.candidates]
    candidates = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in chosen]
    assert all(tokenizer.unk_token_id not in c for c in candidates)
    texts, images = prompts(names, args.images)
    times: dict[str, float] = {"ours": 0.0, "uncached": 0.0, "openflamingo": 0.0}
    worst = 0.0
    with torch.inference_mode():
        for text, pictures in zip(texts, images):
            inputs = dict(processor(text=[text], images=[pictures], return_tensors="pt"))
            results = {}
            start = time.perf_counter()
            mean = candidate_logprobs(model, inputs, candidates, 64, tokenizer.pad_token_id, None)[0]
            results["ours"] = mean * np.array([len(c) for c in candidates])  # the references sum over tokens
            times["ours"] += time.perf_counter() - start
            for name, method in (("uncached", uncached), ("openflamingo", openflamingo_loop)):
                start = time.perf_counter()
                results[name] = method(model, inputs, candidates)
                times[name] += time.perf_counter() - start
            worst = max(worst, *(float(np.abs(results["ours"] - results[m]).max()) for m in results))
    tokens = [len(c) for c in candidates]
    print(f"{args.images} prompt(s) of {inputs['input_ids'].shape[1]} tokens, {len(candidates)} names of "
          f"{min(tokens)}-{max(tokens)} tokens (mean {np.mean(tokens):.2f}), torch threads {torch.get_num_threads()}")
    print(f"{'method':<14}{'s per image':>12}{'x ours':>9}")
    for name, total in times.items():
        print(f"{name:<14}{total / args.images:>12.3f}{total / times['ours']:>9.1f}")
    print(f"largest log-likelihood difference from ours: {worst:.2e} (allowed {TOLERANCE:g})")
    if not worst <= TOLERANCE:  # also catches NaN
        print("FAIL: the three ways disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
