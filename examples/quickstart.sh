#!/usr/bin/env bash
# The whole Nano-LLaDA pipeline on the builtin corpus, offline, in about 5 minutes on a laptop CPU:
# data -> AR pretrain -> diffusion pretrain from the AR weights -> SFT of both -> sample -> compare
# -> the benchmark's accuracy per model (seen / forward / reverse) -> plot.
# The recipe is bench/quality.py's (same shape, learning rates, batch), with fewer steps.
# Runs live in ./llada-home unless LLADA_HOME says otherwise; rerunning starts the runs over.
set -euo pipefail

export LLADA_HOME="${LLADA_HOME:-$PWD/llada-home}"
SIZE=(--preset tiny --vocab-size 2048)
TRAIN=(--batch-size 16 --overwrite)
AR_STEPS="${AR_STEPS:-600}"
DIFFUSION_STEPS="${DIFFUSION_STEPS:-300}"
SFT_STEPS="${SFT_STEPS:-300}"
DIFFUSION_SFT_STEPS="${DIFFUSION_SFT_STEPS:-600}"  # an answer token is trained only when masked
SEEN="Which city is the capital of Ninaria?"      # asked in SFT
HELDOUT="Which city is the capital of Talaria?"   # only in pretraining text, never asked in SFT

llada data fetch builtin
llada pretrain ar "${SIZE[@]}" "${TRAIN[@]}" --learning-rate 3e-3 --max-steps "$AR_STEPS" --run-name ar-base
llada pretrain diffusion --init-from ar-base "${TRAIN[@]}" --learning-rate 1e-3 --max-steps "$DIFFUSION_STEPS" \
  --run-name dlm-base
llada sft --base ar-base "${TRAIN[@]}" --learning-rate 1e-3 --max-steps "$SFT_STEPS" --run-name ar-chat
llada sft --base dlm-base "${TRAIN[@]}" --learning-rate 1e-3 --max-steps "$DIFFUSION_SFT_STEPS" --run-name dlm-chat

llada sample dlm-chat --chat --prompt "$SEEN" --gen-length 32
llada compare --ar ar-chat --diffusion dlm-chat --max-new-tokens 32 --prompt "$SEEN" --prompt "$HELDOUT"
llada eval ar-chat --no-likelihood
llada eval dlm-chat --no-likelihood
llada plot ar-base dlm-base ar-chat dlm-chat --out "$LLADA_HOME/loss.png"
