#!/usr/bin/env bash
# The quick start as shell commands: exactly what `llada pipeline examples/quickstart.toml --dry-run`
# prints (tests/docs/test_examples.py keeps the two equal: change the .toml, then paste its plan).
# data -> AR pretrain -> diffusion pretrain from the AR weights -> SFT of both -> the benchmark's
# accuracy per model (seen / forward / reverse) -> sample -> compare -> plot, on the builtin corpus,
# offline, in about 5 minutes on a laptop CPU. The recipe is bench/quality.py's (same shape,
# learning rates, batch), with fewer steps. Runs live in ./llada-home. Run again, this script stops
# at the first run that exists; `llada pipeline examples/quickstart.toml` skips what is done.
set -euo pipefail

llada --home llada-home data fetch builtin
llada --home llada-home pretrain ar --batch-size 16 --run-name ar-base --preset tiny --vocab-size 2048 --learning-rate 0.003 --max-steps 600
llada --home llada-home pretrain diffusion --batch-size 16 --run-name dlm-base --init-from ar-base --learning-rate 0.001 --max-steps 300
llada --home llada-home sft --batch-size 16 --run-name ar-chat --base ar-base --learning-rate 0.001 --max-steps 300
llada --home llada-home sft --batch-size 16 --run-name dlm-chat --base dlm-base --learning-rate 0.001 --max-steps 600
llada --home llada-home eval ar-chat --no-likelihood
llada --home llada-home eval dlm-chat --no-likelihood
llada --home llada-home sample dlm-chat --chat --prompt 'Which city is the capital of Ninaria?' --gen-length 32
llada --home llada-home compare --ar ar-chat --diffusion dlm-chat --max-new-tokens 32 --prompt 'Which city is the capital of Ninaria?' --prompt 'Which city is the capital of Talaria?'
llada --home llada-home plot ar-base dlm-base ar-chat dlm-chat --out llada-home/loss.png
