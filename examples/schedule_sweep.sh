#!/usr/bin/env bash
# Compare diffusion training schedules from the same AR start: iid_t (LLaDA 1.0), the WSD block
# curriculum (LLaDA 2.0), Nano-LLaDA's mask-ratio schedule, and the cosine noise schedule with the
# time-weighted loss.
# Run examples/quickstart.sh first (it makes ar-base); then plot the validation curves together.
set -euo pipefail
export LLADA_HOME="${LLADA_HOME:-$PWD/llada-home}"
STEPS="${STEPS:-200}"
COMMON=(--init-from ar-base --batch-size 16 --learning-rate 2e-3 --max-steps "$STEPS" --overwrite)

llada pretrain diffusion "${COMMON[@]}" --mask-schedule iid_t --run-name sweep-iid
llada pretrain diffusion "${COMMON[@]}" --use-block-curriculum --run-name sweep-blocks
llada pretrain diffusion "${COMMON[@]}" --mask-schedule wsd --run-name sweep-ratio
llada pretrain diffusion "${COMMON[@]}" --noise-schedule cosine --time-weighted-loss --run-name sweep-cosine
RUNS=(sweep-iid sweep-blocks sweep-ratio sweep-cosine)
llada plot "${RUNS[@]}" --metric val_loss,block_size,mask_ratio --out "$LLADA_HOME/sweep.png"
for run in "${RUNS[@]}"; do llada eval "$run" --no-questions; done
