"""The Examples section of every command's help: command lines that work offline on the builtin
corpus, in the order of the quick start (its runs: ar-base, dlm-base, ar-chat, dlm-chat).

Keyed by the command's path under `llada` ("" is `llada` itself). tests/cli/test_help.py checks
that every command has examples and that its parser reads each of them.
"""

from __future__ import annotations

NINARIA = "'Which city is the capital of Ninaria?'"  # a question the builtin SFT data asks

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "llada pipeline examples/quickstart.toml",
        "llada pretrain ar --preset tiny --max-steps 600 --run-name ar-base",
        "llada sample dlm-chat --chat --prompt " + NINARIA,
    ),
    "data": ("llada data fetch builtin",),
    "data fetch": (
        "llada data fetch builtin",
        "llada data fetch builtin --out corpus",
    ),
    "pretrain": (
        "llada pretrain ar --preset tiny --max-steps 600 --run-name ar-base",
        "llada pretrain diffusion --init-from ar-base --max-steps 300 -n dlm-base",
    ),
    "pretrain ar": (
        "llada pretrain ar --preset tiny --vocab-size 2048 --max-steps 600 -n ar-base",
        "llada pretrain ar --preset tiny --epochs 1 --batch-size 16 --run-name ar-epoch",
    ),
    "pretrain diffusion": (
        "llada pretrain diffusion --init-from ar-base --max-steps 300 -n dlm-base",
        "llada pretrain diffusion --preset tiny --max-steps 600 --run-name dlm-scratch",
    ),
    "sft": (
        "llada sft --base ar-base --max-steps 300 --run-name ar-chat",
        "llada sft --base dlm-base --max-steps 600 --run-name dlm-chat",
    ),
    "dpo": (
        "llada dpo --base dlm-chat --max-steps 100 --run-name dlm-dpo",
        "llada dpo --base ar-chat --data pairs.jsonl --beta 0.1 --run-name ar-dpo",
    ),
    "serve": (
        "llada serve ar-chat dlm-chat --port 8000",
        "llada serve dlm-chat --api-key secret --max-batch 16",
    ),
    "grpo": (
        "llada grpo --base dlm-chat --max-steps 40 --run-name dlm-grpo",
        "llada grpo --base ar-chat --data prompts.jsonl --run-name ar-grpo",
    ),
    "sample": (
        "llada sample dlm-chat --chat --prompt " + NINARIA,
        "llada sample ar-chat --chat -p 'Who are you?' -p 'Hello' --max-new-tokens 32",
        "llada sample dlm-base --infill 'The capital of[MASK:4] is Tiren.'",
    ),
    "chat": (
        "llada chat dlm-chat",
        "llada chat ar-chat --temperature 0.7 --top-k 20",
    ),
    "compare": (
        "llada compare --ar ar-chat --diffusion dlm-chat --prompt 'Who are you?'",
        "llada compare --diffusion dlm-chat --diffusion-cache dual -p 'Who are you?'",
    ),
    "eval": (
        "llada eval dlm-chat --no-likelihood",
        "llada eval dlm-chat --questions mine.jsonl --no-likelihood",
        "llada eval dlm-base --gen-ppl ar-base --no-questions",
    ),
    "sweep": (
        "llada sweep dlm-chat --limit 16",
        "llada sweep dlm-chat --out sweep.png",
    ),
    "plot": (
        "llada plot ar-base dlm-base ar-chat dlm-chat",
        "llada plot dlm-base --metric loss,lr --text",
        "llada plot --trace trace.jsonl",
    ),
    "runs": (
        "llada runs list",
        "llada runs show dlm-chat",
    ),
    "runs list": (
        "llada runs list",
        "llada runs list --json",
    ),
    "runs show": (
        "llada runs show dlm-chat",
        "llada runs show dlm-base --json",
    ),
    "runs rm": (
        "llada runs rm dlm-scratch",
        "llada runs rm ar-epoch dlm-scratch --yes",
    ),
    "runs import": (
        "llada runs import exported/dlm-chat --name dlm-back",
        "llada runs import exported/ar-chat --name ar-back --kind ar",
    ),
    "runs merge": (
        "llada runs merge dlm-base --top-k-val 2 --name dlm-top2",
        "llada runs merge dlm-chat@540 dlm-chat --name dlm-chat-avg",
    ),
    "export": (
        "llada export ar-chat exported/ar-chat",
        "llada export dlm-chat exported/dlm-chat",
    ),
    "pipeline": (
        "llada pipeline examples/quickstart.toml",
        "llada pipeline examples/quickstart.toml --dry-run",
        "llada pipeline examples/quickstart.toml --stage sft --overwrite",
    ),
}
