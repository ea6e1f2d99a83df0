#!/usr/bin/env bash
# Everything the tests need beyond a plain install: test and hf extras, the metric oracles, a running one-node SLURM.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q -e '.[test,hf]'
# The reference implementations are test-only oracles, loaded by file path; their own dependencies are not needed.
python -m pip install -q --no-deps axlearn==0.0.1.post20240213000026 salesforce-lavis==1.0.2 open-flamingo==2.0.1
bash .ci/slurm.sh
