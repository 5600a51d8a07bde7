#!/usr/bin/env bash
# Sample many prompts as one padded batch and keep machine-readable results: one JSON line per
# prompt (text, token ids, settings, forward passes, seconds). Run examples/quickstart.sh first.
set -euo pipefail
export LLADA_HOME="${LLADA_HOME:-$PWD/llada-home}"
prompts="$(mktemp --suffix .txt)"
printf '%s\n' "What is the capital of Nozunia?" "Who are you?" "诺祖尼亚的首都是哪里？" > "$prompts"

llada sample dlm-chat --chat --prompts-file "$prompts" --gen-length 32 --threshold 0.9 --jsonl > dlm.jsonl
llada sample ar-chat --chat --prompts-file "$prompts" --max-new-tokens 32 --jsonl > ar.jsonl
llada compare --ar ar-chat --diffusion dlm-chat --prompts-file "$prompts" --max-new-tokens 32
echo "wrote dlm.jsonl and ar.jsonl"
