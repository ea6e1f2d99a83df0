#!/usr/bin/env bash
# Runs multi-rank jobs again and again and counts the runs that exited non-zero (a rank aborting at exit, a hang).
#   bash scripts/stress_ranks.sh [JOB_RUNS=200] [SWEEP_RUNS=50]
# A job run: one 3-rank vqav2 job under torchrun. A sweep run: 3 jobs on 2 ranks in one process group, as the
# submitit launchers and torchrun's -m sweeps run them. Each run is bounded by a timeout, so a hang counts as a failure.
set -u
job_runs=${1:-200}
sweep_runs=${2:-50}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
torchrun=(python -m torch.distributed.run --standalone)

count() {  # count LABEL RUNS COMMAND...
  local label=$1 runs=$2 failed=0
  shift 2
  for i in $(seq 1 "$runs"); do
    rm -rf "$work/out"
    if ! timeout 300 "$@" hydra.run.dir="$work/out" hydra.sweep.dir="$work/out" >"$work/log" 2>&1; then
      failed=$((failed + 1))
      echo "$label run $i failed:"; grep -E "terminate|Signal|signal|Error|error" "$work/log" | head -5
    fi
  done
  echo "$label: $failed of $runs runs exited non-zero"
  return "$failed"
}

count "3-rank job" "$job_runs" "${torchrun[@]}" --nproc_per_node=3 -m evalrunner dataset=vqav2 shots=2 num_samples=30
jobs=$?
count "3-job sweep on 2 ranks" "$sweep_runs" "${torchrun[@]}" --nproc_per_node=2 -m evalrunner -m dataset=vqav2 \
  shots=0,1,2 num_samples=30
sweeps=$?
[ "$jobs" -eq 0 ] && [ "$sweeps" -eq 0 ]
