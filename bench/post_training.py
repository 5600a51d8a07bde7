"""Post-training on both tracks: DPO and GRPO of the quick start's chat models, scored on the
benchmark's forward set (facts never in SFT, never in a preference pair, never an RL prompt),
against the model each starts from.

    python bench/post_training.py [--seeds 1] [--methods dpo,grpo] [--steps 100] [--dtype auto]
        [--learning-rate 1e-4] [--beta 0.1] [--dpop-lambda 0]  (DPO)
        [--group-size 8] [--kl-beta 0.04] [--inner-steps 1]    (GRPO)
        [--curve-every 25] [--home DIR] [--fresh] [--json]

Per seed: the quick start (examples/quickstart.toml: AR pretraining, diffusion from the AR
weights, SFT of both), then `llada dpo` on the builtin preference pairs and `llada grpo` on the
builtin RL questions, of each chat model, with the same steps, batch and settings for both tracks.
Each chat model and each post-trained run answers the builtin benchmark (`llada eval
--no-likelihood`). Accuracies are mean ± sample standard deviation over seeds; a row also gives
its training reward at the end (DPO: the reward accuracy on the pairs; GRPO: the mean reward of
the last 10 steps' sampled answers) and its training seconds. `--json` prints {"rows": [{"track":
"ar" | "diffusion", "method": "dpo" | "grpo", "forward_before", "forward_after", "seen_before",
"seen_after", "reverse_before", "reverse_after" (fractions), "std": {...}, "reward", "curve": [{"step",
"forward", "seen", "reward"}] (means over seeds at every --curve-every steps), "seconds", "seeds",
"questions"}], "settings", "bench_seconds"}. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from quality import SETS, Bench, log, mean_std, pm
from recipe import CHATS, RECIPE, bench_parser, benchmark, train_quick_start

METHODS = ("dpo", "grpo")


def method_flags(method: str, args: argparse.Namespace) -> list[str]:
    """The flags of one post-training method, the same for both tracks."""
    if method == "dpo":
        return ["--beta", str(args.beta), "--dpop-lambda", str(args.dpop_lambda)]
    return [
        "--group-size",
        str(args.group_size),
        "--kl-beta",
        str(args.kl_beta),
        "--inner-steps",
        str(args.inner_steps),
    ]


def final_reward(method: str, metrics: list[dict]) -> float:
    """DPO: the last logged reward accuracy; GRPO: the mean reward of its last 10 logged steps."""
    if method == "dpo":
        return [row["reward_accuracy"] for row in metrics if "reward_accuracy" in row][-1]
    return statistics.fmean([row["reward"] for row in metrics if "reward" in row][-10:])


def reward_at(method: str, metrics: list[dict], step: int, window: int) -> float:
    """DPO: the reward accuracy logged at `step`; GRPO: the mean reward of the `window` steps to it."""
    if method == "dpo":
        return next(row["reward_accuracy"] for row in metrics if row["step"] == step)
    return statistics.fmean(row["reward"] for row in metrics if step - window < row["step"] <= step)


def run_seed(bench: Bench, seed: int, args: argparse.Namespace) -> list[dict]:
    """The quick start of this seed, then each method on each chat model, evaluated with its base,
    and at every `--curve-every` steps on the way (its checkpoints)."""
    common = ["--dtype", args.dtype, "--batch-size", "16"]
    train_quick_start(bench, seed, RECIPE, *common)
    marks = list(range(args.curve_every, args.steps, args.curve_every))
    checkpoints = ["--save-every", str(args.curve_every), "--keep-checkpoints", "0"] if marks else []
    results = []
    for track, chat in CHATS.items():
        base = f"{chat}-s{seed}"
        before = benchmark(bench, base, seed)
        for method in args.methods:
            name = f"{chat}-{method}-s{seed}"
            command = [method, "--base", base, "--max-steps", str(args.steps), "--log-every", "1", *common]
            command += ["--learning-rate", str(args.learning_rate)]
            seconds = bench.train(name, seed, *command, *checkpoints, *method_flags(method, args))
            log(f"{name}: eval at steps {[*marks, args.steps]}")
            metrics = bench.metrics(name)
            curve = [
                {
                    "step": step,
                    **benchmark(bench, name if step == args.steps else f"{name}@{step}", seed),
                    "reward": reward_at(method, metrics, step, args.curve_every),
                }
                for step in [*marks, args.steps]
            ]
            after = curve[-1]
            results.append(
                {
                    "track": track,
                    "method": method,
                    "before": before,
                    "after": after,
                    "curve": curve,
                    "reward": final_reward(method, metrics),
                    "seconds": seconds,
                }
            )
    return results


def summary(track: str, method: str, results: list[dict]) -> dict:
    stats = {
        f"{s}_{when}": mean_std([r[when][s] for r in results]) for s in SETS for when in ("before", "after")
    }
    return {
        "track": track,
        "method": method,
        **{key: value[0] for key, value in stats.items()},
        "std": {key: value[1] for key, value in stats.items()},
        "reward": statistics.fmean(r["reward"] for r in results),
        "curve": [
            {
                "step": points[0]["step"],
                **{s: statistics.fmean(p[s] for p in points) for s in ("forward", "seen", "reward")},
            }
            for points in zip(*(r["curve"] for r in results), strict=True)
        ],
        "seconds": statistics.fmean(r["seconds"] for r in results),
        "seeds": len(results),
        "questions": results[0]["after"]["questions"],
    }


def main() -> None:
    parser = bench_parser(__doc__, "post-training")
    parser.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--curve-every", type=int, default=25, help="evaluate checkpoints every N steps")
    parser.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--dpop-lambda", type=float, default=0.0, help="DPO-Positive's weight (0: plain DPO)")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--kl-beta", type=float, default=0.04)
    parser.add_argument("--inner-steps", type=int, default=1)
    args = parser.parse_args()
    if unknown := set(args.methods) - set(METHODS):
        parser.error(f"--methods: unknown {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    bench = Bench(args)
    results = [r for seed in range(args.seeds) for r in run_seed(bench, seed, args)]
    rows = [
        summary(track, method, [r for r in results if (r["track"], r["method"]) == (track, method)])
        for track in CHATS
        for method in args.methods
    ]
    settings = {
        k: getattr(args, k)
        for k in (
            "steps",
            "dtype",
            "learning_rate",
            "beta",
            "dpop_lambda",
            "group_size",
            "kl_beta",
            "inner_steps",
        )
    }
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps({"rows": rows, "settings": settings, "bench_seconds": seconds}))
        return
    print(
        f"Post-training of the quick start's chat models: {args.seeds} seed(s), {settings}; questions "
        f"per set and language: {rows[0]['questions']}"
    )
    columns = ("forward_before", "forward_after", "seen_before", "seen_after")
    print(
        f"{'track':10} {'method':6} "
        + " ".join(f"{c.replace('_', ' '):>15}" for c in columns)
        + "   reward  seconds"
    )
    for row in rows:
        cells = " ".join(f"{pm(row[k], row['std'][k]):>15}" for k in columns)
        print(f"{row['track']:10} {row['method']:6} {cells} {row['reward']:>8.0%} {row['seconds']:>8.0f}")
    print("curves (means over seeds): step: forward accuracy / seen accuracy / training reward")
    for row in rows:
        points = "  ".join(
            f"{p['step']}: {p['forward']:.0%}/{p['seen']:.0%}/{p['reward']:.2f}" for p in row["curve"]
        )
        start = f"0: {row['forward_before']:.0%}/{row['seen_before']:.0%}"
        print(f"{row['track']:10} {row['method']:6} {start}  {points}")
    print(f"{seconds:.0f} s")


if __name__ == "__main__":
    main()
