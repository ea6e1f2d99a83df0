#!/usr/bin/env bash
# The SLURM sweep behind OpenFlamingo's published 0/4/8-shot COCO and VQAv2 numbers (arXiv 2308.01390, Table 11:
# random demos, 3 trials), for OpenFlamingo-3B-vitl-mpt1b or -4B. The README's "OpenFlamingo checkpoints" section has
# the published figures to compare results.json with.
#   OF_MODEL=4B OF_CHECKPOINT=/shared/of4b/checkpoint.pt DATA_ROOT=/shared/eval SWEEP_DIR=/shared/sweeps/of4b \
#       bash scripts/reproduce_openflamingo.sh [more overrides, e.g. hydra.launcher.partition=gpu]
# OF_LM and OF_TOKENIZER override the release's language model (a local copy); OF_VISION and OF_VISION_PRETRAINED
# its vision encoder. DATA_ROOT unset scores the bundled sample data; every argument is passed on to evalrunner.
set -euo pipefail
model=${OF_MODEL:-4B}
case "$model" in
    3B) lm=anas-awadalla/mpt-1b-redpajama-200b; every=1; remote=true ;;  # custom code (README: which LMs load)
    4B) lm=togethercomputer/RedPajama-INCITE-Base-3B-v1; every=2; remote=false ;;
    *) echo "reproduce_openflamingo: OF_MODEL=$model: choose 3B or 4B" >&2; exit 2 ;;
esac
: "${OF_CHECKPOINT:?set OF_CHECKPOINT to the release checkpoint.pt of OpenFlamingo-$model}"
args=(
    dataset=coco,vqav2 protocol=openflamingo shots="${SHOTS:-0,4,8}" trial="${TRIALS:-0,1,2}"
    model=openflamingo
    model.vision_encoder="${OF_VISION:-ViT-L-14}" model.vision_pretrained="${OF_VISION_PRETRAINED:-openai}"
    model.lm_path="${OF_LM:-$lm}" model.tokenizer_path="${OF_TOKENIZER:-${OF_LM:-$lm}}"
    model.cross_attn_every_n_layers="${OF_CROSS_ATTN_EVERY:-$every}" model.trust_remote_code="${OF_REMOTE_CODE:-$remote}"
    model.checkpoint="$OF_CHECKPOINT" model.precision="${OF_PRECISION:-amp_bf16}"  # the paper ran amp_bf16
    hydra.sweep.dir="${SWEEP_DIR:-multirun/openflamingo-$model}"
)
[[ -n "${DATA_ROOT:-}" ]] && args+=(data_root="$DATA_ROOT")
launcher=${LAUNCHER:-slurm}
[[ "$launcher" != none ]] && args+=(hydra/launcher="$launcher")
exec "${PYTHON:-python}" -m evalrunner -m "${args[@]}" "$@"
