"""Post-training on both tracks: DPO of the quick start's chat models, scored on the benchmark's
forward set (facts never in SFT, never in a preference pair), against the model it starts from.

    python bench/post_training.py [--seeds 1] [--steps 100] [--beta 0.1] [--learning-rate 3e-4]
                                  [--dpop-lambda 0] [--dtype auto] [--home DIR] [--fresh] [--json]

Per seed: the quick start (examples/quickstart.toml: AR pretraining, diffusion from the AR
weights, SFT of both), then `llada dpo` of each chat model on the builtin preference pairs with
the same steps, batch and learning rate for both tracks. Each chat model and each DPO run answers
the builtin benchmark (`llada eval --no-likelihood`). Accuracies are mean ± sample standard
deviation over seeds; the DPO rows also give the last logged reward accuracy on the pairs and
the training seconds. `--json` prints {"rows": [{"track": "ar" | "diffusion", "method": "dpo",
"forward_before", "forward_after", "seen_before", "seen_after", "reverse_after" (fractions),
"std": {...}, "reward_accuracy", "seconds", "seeds", "questions"}], "settings", "bench_seconds"}.
Not part of the test suite: about 6 minutes per seed on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from quality import SETS, Bench, log, mean_std, pm
from recipe import CHATS, RECIPE, bench_parser, benchmark, train_quick_start


def train_seed(bench: Bench, seed: int, args: argparse.Namespace) -> dict[str, tuple[str, float]]:
    """The quick start of this seed, then DPO of each chat model: {track: (DPO run, its seconds)}."""
    common = ["--dtype", args.dtype, "--batch-size", "16"]
    train_quick_start(bench, seed, RECIPE, *common)
    runs = {}
    for track, chat in CHATS.items():
        name = f"{chat}-dpo-s{seed}"
        dpo = ["dpo", "--base", f"{chat}-s{seed}", "--max-steps", str(args.steps), *common]
        dpo += ["--beta", str(args.beta), "--learning-rate", str(args.learning_rate)]
        dpo += ["--dpop-lambda", str(args.dpop_lambda)]
        runs[track] = (name, bench.train(name, seed, *dpo))
    return runs


def main() -> None:
    parser = bench_parser(__doc__, "post-training")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--dpop-lambda", type=float, default=0.0, help="DPO-Positive's weight (0: plain DPO)")
    parser.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16"))
    args = parser.parse_args()
    started = time.perf_counter()
    bench = Bench(args)
    per: dict[str, list[dict]] = {track: [] for track in CHATS}
    for seed in range(args.seeds):
        for track, (run, seconds) in train_seed(bench, seed, args).items():
            log(f"{run}: eval, and its base's")
            before, after = benchmark(bench, f"{CHATS[track]}-s{seed}", seed), benchmark(bench, run, seed)
            rewards = [row["reward_accuracy"] for row in bench.metrics(run) if "reward_accuracy" in row]
            per[track].append(
                {"before": before, "after": after, "reward_accuracy": rewards[-1], "seconds": seconds}
            )
    rows = []
    for track, results in per.items():
        stats = {
            f"{s}_{when}": mean_std([r[when][s] for r in results])
            for s in SETS
            for when in ("before", "after")
        }
        rows.append(
            {
                "track": track,
                "method": "dpo",
                **{key: value[0] for key, value in stats.items()},
                "std": {key: value[1] for key, value in stats.items()},
                "reward_accuracy": statistics.fmean(r["reward_accuracy"] for r in results),
                "seconds": statistics.fmean(r["seconds"] for r in results),
                "seeds": len(results),
                "questions": results[0]["after"]["questions"],
            }
        )
    settings = {k: getattr(args, k) for k in ("steps", "beta", "learning_rate", "dpop_lambda", "dtype")}
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps({"rows": rows, "settings": settings, "bench_seconds": seconds}))
        return
    print(
        f"DPO of the quick start's chat models: {args.seeds} seed(s), {settings}; questions per set and "
        f"language: {rows[0]['questions']}"
    )
    print(
        f"{'track':10} {'method':6} {'forward before':>15} {'forward after':>15} {'seen before':>15} "
        f"{'seen after':>15} {'reward acc':>10} {'seconds':>8}"
    )
    for row in rows:
        cells = [
            pm(row[k], row["std"][k])
            for k in ("forward_before", "forward_after", "seen_before", "seen_after")
        ]
        print(
            f"{row['track']:10} {row['method']:6} "
            + " ".join(f"{c:>15}" for c in cells)
            + f" {row['reward_accuracy']:>10.0%} {row['seconds']:>8.0f}"
        )
    print(f"{seconds:.0f} s")


if __name__ == "__main__":
    main()
