#!/usr/bin/env bash
# One short check for a machine with a GPU (under 10 minutes): builds a random ~1B-parameter LLaVA-style checkpoint
# (a TinyLlama-shaped Llama behind tests/helpers/tiny_vllm.py's CLIP), checks that model=hf and model=vllm give equal greedy
# predictions on a few 4-shot VQAv2 items (float32, where both are exact), then prints items/s of each in bfloat16.
# Usage: bash scripts/gpu_check.sh [--tiny]   (--tiny: tests/helpers/tiny_vllm.py's checkpoint as it is, float32, for CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
tiny=false
[[ "${1:-}" == "--tiny" ]] && tiny=true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export VLLM_ENABLE_V1_MULTIPROCESSING=0 VLLM_HOST_IP=127.0.0.1 VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}

"$PY" - "$work/ckpt" "$tiny" <<'EOF'
import importlib, sys
from pathlib import Path

def load(name):
    sys.path.insert(0, "tests")  # the test helpers package of this checkout
    return importlib.import_module(f"helpers.{name}")

out, tiny = Path(sys.argv[1]), sys.argv[2] == "true"
tiny_vllm = load("tiny_vllm")
small = tiny_vllm.build_llava_vllm(out.with_name("tiny"))
if tiny:
    small.rename(out)
    sys.exit()
import torch
from transformers import AutoConfig, AutoProcessor, LlavaForConditionalGeneration

config = AutoConfig.from_pretrained(small)
t = config.text_config
t.hidden_size, t.intermediate_size, t.num_hidden_layers = 2048, 5632, 22
t.num_attention_heads, t.num_key_value_heads, t.max_position_embeddings = 32, 4, 4096
torch.manual_seed(0)
model = LlavaForConditionalGeneration(config).to(torch.bfloat16).eval()
print(f"checkpoint: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters", flush=True)
model.save_pretrained(out)
for shard in out.glob("*.safetensors"):
    tiny_vllm._rename_vision_keys(shard)
index = out / "model.safetensors.index.json"
if index.exists():  # a sharded save: its map must name the renamed keys
    import json
    data = json.loads(index.read_text())
    data["weight_map"] = {k.replace("vision_tower.", "vision_tower.vision_model.", 1)
                          if "vision_tower." in k and "vision_model." not in k else k: v
                          for k, v in data["weight_map"].items()}
    index.write_text(json.dumps(data))
AutoProcessor.from_pretrained(small).save_pretrained(out)
EOF

if $tiny; then speed_items=8; dtype=float32; max_len=1024; extra=("model.engine_args={enforce_eager:true}"); else
    speed_items=256; dtype=bfloat16; max_len=2048; extra=(); fi
job=(dataset=vqav2 shots=4 dataset.generation.num_beams=1 model.path="$work/ckpt")
run() { "$PY" -m evalrunner "${job[@]}" "$@" >"$work/log" 2>&1 || { tail -20 "$work/log"; exit 1; }; }

run model=hf model.dtype=float32 num_samples=8 batch_size=8 hydra.run.dir="$work/eq-hf"
run model=vllm model.dtype=float32 model.max_model_len=$max_len num_samples=8 batch_size=8 "${extra[@]}" \
    hydra.run.dir="$work/eq-vllm"
if cmp -s "$work/eq-hf/predictions.json" "$work/eq-vllm/predictions.json"; then
    echo "greedy predictions equal on 8 items (float32): yes"
else
    echo "greedy predictions equal on 8 items (float32): NO"; diff "$work/eq-hf/predictions.json" \
        "$work/eq-vllm/predictions.json" | head -20; exit 1
fi
run model=hf model.dtype="$dtype" num_samples="$speed_items" batch_size=16 hydra.run.dir="$work/speed-hf"
run model=vllm model.dtype="$dtype" model.max_model_len=$max_len num_samples="$speed_items" batch_size="$speed_items" \
    "${extra[@]}" hydra.run.dir="$work/speed-vllm"
"$PY" - "$work" "$speed_items" "$dtype" <<'EOF'
import json, sys
from pathlib import Path

work, items, dtype = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
results = {name: json.loads((work / f"speed-{name}" / "result.json").read_text()) for name in ("hf", "vllm")}
rate = {name: r["num_samples"] / r["timings"]["generate"] for name, r in results.items()}
items = results["hf"]["num_samples"]  # the sample data's split may hold fewer than asked
print(f"{items} items, 4 shots, {dtype}: hf {rate['hf']:.2f} items/s, vllm {rate['vllm']:.2f} items/s, "
      f"vllm/hf {rate['vllm'] / rate['hf']:.2f}x")
EOF
