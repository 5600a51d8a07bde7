#!/usr/bin/env bash
# The whole Nano-LLaDA pipeline on the builtin corpus, offline, in a few minutes on a laptop CPU:
# data -> AR pretrain -> diffusion pretrain from the AR weights -> SFT of both -> sample -> compare -> plot.
# Runs live in ./llada-home unless LLADA_HOME says otherwise; rerunning starts the runs over.
set -euo pipefail

export LLADA_HOME="${LLADA_HOME:-$PWD/llada-home}"
SIZE=(--preset tiny --vocab-size 1024)
TRAIN=(--batch-size 16 --learning-rate 2e-3 --overwrite)
PRETRAIN_STEPS="${PRETRAIN_STEPS:-300}"
SFT_STEPS="${SFT_STEPS:-150}"

llada data fetch builtin
llada pretrain ar "${SIZE[@]}" "${TRAIN[@]}" --max-steps "$PRETRAIN_STEPS" --run-name ar-base
llada pretrain diffusion --init-from ar-base "${TRAIN[@]}" --max-steps "$PRETRAIN_STEPS" --run-name dlm-base
llada sft --base ar-base "${TRAIN[@]}" --learning-rate 1e-3 --max-steps "$SFT_STEPS" --run-name ar-chat
llada sft --base dlm-base "${TRAIN[@]}" --learning-rate 1e-3 --max-steps "$SFT_STEPS" --run-name dlm-chat

llada sample dlm-chat --chat --prompt "What is the capital of Nozunia?" --gen-length 32
llada compare --ar ar-chat --diffusion dlm-chat --max-new-tokens 32 \
  --prompt "What is the capital of Nozunia?" --prompt "Who are you?"
llada plot ar-base dlm-base ar-chat dlm-chat --out "$LLADA_HOME/loss.png"
