"""The SFT objectives side by side: full (LLaDA), block diffusion (LLaDA 2.0), and the CAP
confidence term (LLaDA 2.0-CAP) against the same training without it; accuracy, and decoding at
batch 1.

    python bench/sft_forms.py [--seeds 1] [--dtype auto] [--block-size 8] [--cap-weight 1]
                              [--home DIR] [--fresh] [--json]

Per seed: the quick start's base (examples/quickstart.toml: AR pretraining, diffusion from the AR
weights), then four diffusion SFTs with the quick start's learning rate:
- full: the default objective (docs/algorithms.md section 6), the quick start's 600 steps;
- block: `--sft-form block --block-size B`, 600 steps; it decodes block-causally with the exact
  prefix cache;
- full+plain: `full` fine-tuned 300 steps more, as it was;
- full+cap: `full` fine-tuned the same 300 steps with `--cap-weight λ` (a CAP stage after SFT, as
  LLaDA 2.0-CAP is trained), so that it differs from full+plain by the CAP term alone.
Each chat model answers the builtin benchmark (`llada eval --no-likelihood`: exact match on seen,
forward and reverse questions per language), then the seen and forward questions again one at a
time (batch 1) with its own default sampler (threshold 0.9; 32 answer slots, as eval): tokens per
forward pass and tokens per second. The block run is also decoded without its cache, and the bench
counts the answers that differ (the cache is exact: 0). Accuracies are mean ± sample standard
deviation over seeds, with the questions per set and language. `--json` prints {"rows": [{"arm",
"seen", "forward", "reverse" (fractions), "std": {set: ...}, "tokens_per_forward",
"tokens_per_second", "batch1_accuracy", "seeds", "questions"}], "cache_mismatches", "settings",
"bench_seconds"}. Not part of the test suite: about 10 minutes per seed on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from quality import SETS, Bench, log, pm
from recipe import bench_parser, benchmark, set_stats, train_quick_start

from llada_cli import api
from llada_cli.engine.data.builtin import answer_matches
from llada_cli.engine.evaluation.sweep import builtin_questions

ARMS = ("full", "block", "full+plain", "full+cap")
GEN_LENGTH = 32  # eval's answer length


def train_seed(bench: Bench, seed: int, args: argparse.Namespace) -> dict[str, str]:
    """The base of this seed and its SFTs; the chat run of each arm."""
    common = ["--dtype", args.dtype, "--batch-size", "16"]
    train_quick_start(bench, seed, ("ar-base", "dlm-base"), *common)
    sft = [*common, "--learning-rate", "1e-3"]
    chats = {arm: f"{arm.replace('+', '-')}-s{seed}" for arm in ARMS}
    base = ["sft", "--base", f"dlm-base-s{seed}", "--max-steps", "600", *sft]
    bench.train(chats["full"], seed, *base)
    bench.train(chats["block"], seed, *base, "--sft-form", "block", "--block-size", str(args.block_size))
    more = ["sft", "--base", chats["full"], "--max-steps", "300", *sft]
    bench.train(chats["full+plain"], seed, *more)
    bench.train(chats["full+cap"], seed, *more, "--cap-weight", str(args.cap_weight))
    return chats


def decode_one_at_a_time(home: Path, run: str, **options: object) -> dict:
    """Seen and forward questions one prompt at a time with the run's own sampler defaults."""
    model = api.load(run, device="cpu", home=home)
    questions = builtin_questions()
    model.generate(questions[0].prompt, chat=True, gen_length=GEN_LENGTH, **options)  # warm up
    tokens = forwards = right = 0
    seconds = 0.0
    answers = []
    for question in questions:
        result = model.generate(question.prompt, chat=True, gen_length=GEN_LENGTH, **options)[0]
        tokens, forwards, seconds = (
            tokens + result.new_tokens,
            forwards + result.forward_passes,
            seconds + result.seconds,
        )
        right += answer_matches(result.text, question.answer)
        answers.append(result.token_ids)
    return {
        "tokens_per_forward": tokens / max(1, forwards),
        "tokens_per_second": tokens / max(1e-9, seconds),
        "batch1_accuracy": right / len(questions),
        "answers": answers,
    }


def main() -> None:
    parser = bench_parser(__doc__, "sft-forms")
    parser.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--block-size", type=int, default=8)
    parser.add_argument("--cap-weight", type=float, default=1.0)
    args = parser.parse_args()
    started = time.perf_counter()
    bench = Bench(args)
    per: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    mismatches = 0
    for seed in range(args.seeds):
        chats = train_seed(bench, seed, args)
        for arm, chat in chats.items():
            log(f"{chat}: eval, then decoding at batch 1")
            accuracy = benchmark(bench, chat, seed)
            decoded = decode_one_at_a_time(bench.home, chat)
            if arm == "block":
                uncached = decode_one_at_a_time(bench.home, chat, cache="none")
                mismatches += sum(
                    a != b for a, b in zip(decoded["answers"], uncached["answers"], strict=True)
                )
            per[arm].append({**accuracy, **decoded})
    rows = []
    for arm, results in per.items():
        rows.append(
            {
                "arm": arm,
                **set_stats(results),
                **{
                    key: statistics.fmean(r[key] for r in results)
                    for key in ("tokens_per_forward", "tokens_per_second", "batch1_accuracy")
                },
                "seeds": len(results),
                "questions": results[0]["questions"],
            }
        )
    settings = {"dtype": args.dtype, "block_size": args.block_size, "cap_weight": args.cap_weight}
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        print(
            json.dumps(
                {"rows": rows, "cache_mismatches": mismatches, "settings": settings, "bench_seconds": seconds}
            )
        )
        return
    print(
        f"SFT forms from the quick start's base: {args.seeds} seed(s), dtype {args.dtype}, block size "
        f"{args.block_size}, CAP weight {args.cap_weight}; questions per set and language: "
        f"{rows[0]['questions']}; batch 1 over seen + forward, {GEN_LENGTH} slots, threshold 0.9"
    )
    print(f"{'arm':11} " + " ".join(f"{s:>13}" for s in SETS) + f" {'tok/forward':>12} {'tok/s b=1':>10}")
    for row in rows:
        cells = " ".join(f"{pm(row[s], row['std'][s]):>13}" for s in SETS)
        print(f"{row['arm']:11} {cells} {row['tokens_per_forward']:>12.2f} {row['tokens_per_second']:>10.1f}")
    print(f"block answers that differ without the cache: {mismatches}")
    print(f"{seconds:.0f} s")


if __name__ == "__main__":
    main()
