"""EMA: the quick start's chat models fine-tuned with a moving average of the weights, scored on
the builtin benchmark through the average and through the weights themselves.

    python bench/ema.py [--decay 0.99] [--seeds 1] [--home DIR] [--json]

Per seed: the quick start's recipe (examples/quickstart.toml: AR pretraining, diffusion from the AR
weights, SFT of both) with `--ema-decay` on both SFTs; then `llada eval` of each chat model with
`--ema` and with `--no-ema`. The raw weights are those the same SFT without `--ema-decay` ends
with (the average only watches the training), so the two rows of a kind compare the average with
plain SFT at the same budget. Accuracies are mean ± sample standard deviation over seeds, with the
questions per set and language. `--json` prints {"rows": [{"kind", "weights": "ema" | "raw",
"seen", "forward", "reverse" (fractions), "std": {set: ...}, "seeds", "questions"}], "decay",
"bench_seconds"}. Not part of the test suite: about 5 minutes per seed on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from quality import SETS, Bench, log, mean_std, pm, scores

RECIPE = {  # examples/quickstart.toml, one seed
    "ar-base": [
        "pretrain",
        "ar",
        "--preset",
        "tiny",
        "--vocab-size",
        "2048",
        "--learning-rate",
        "3e-3",
        "--max-steps",
        "600",
    ],
    "dlm-base": [
        "pretrain",
        "diffusion",
        "--init-from",
        "ar-base",
        "--learning-rate",
        "1e-3",
        "--max-steps",
        "300",
    ],
    "ar-chat": ["sft", "--base", "ar-base", "--learning-rate", "1e-3", "--max-steps", "300"],
    "dlm-chat": ["sft", "--base", "dlm-base", "--learning-rate", "1e-3", "--max-steps", "600"],
}
CHATS = {"ar": "ar-chat", "diffusion": "dlm-chat"}


def train_seed(bench: Bench, seed: int, decay: float) -> None:
    for name, command in RECIPE.items():
        words = [w if w not in RECIPE else f"{w}-s{seed}" for w in command] + ["--batch-size", "16"]
        if name in CHATS.values():
            words += ["--ema-decay", str(decay)]
        bench.train(f"{name}-s{seed}", seed, *words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("bench-home/ema"), help="registry of the runs")
    parser.add_argument("--decay", type=float, default=0.99)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--fresh", action="store_true", help="retrain every run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    bench = Bench(args)
    per: dict[tuple[str, str], list[dict]] = {}
    for seed in range(args.seeds):
        train_seed(bench, seed, args.decay)
        for kind, chat in CHATS.items():
            for weights in ("ema", "raw"):
                log(f"{chat}-s{seed}: eval, {weights} weights")
                report = bench.llada(
                    "--seed",
                    str(seed),
                    "eval",
                    f"{chat}-s{seed}",
                    "--json",
                    "--no-likelihood",
                    "--ema" if weights == "ema" else "--no-ema",
                )
                per.setdefault((kind, weights), []).append(scores(json.loads(report)["accuracy"]))
    rows = []
    for (kind, weights), results in per.items():
        stats = {s: mean_std([r[s] for r in results]) for s in SETS}
        rows.append(
            {
                "kind": kind,
                "weights": weights,
                **{s: stats[s][0] for s in SETS},
                "std": {s: stats[s][1] for s in SETS},
                "seeds": len(results),
                "questions": results[0]["questions"],
            }
        )
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps({"rows": rows, "decay": args.decay, "bench_seconds": seconds}))
        return
    print(
        f"EMA decay {args.decay}, {args.seeds} seed(s), questions per set and language: "
        f"{rows[0]['questions']}"
    )
    print(f"{'kind':10} {'weights':8} " + " ".join(f"{s:>13}" for s in SETS))
    for row in rows:
        cells = " ".join(f"{pm(row[s], row['std'][s]):>13}" for s in SETS)
        print(f"{row['kind']:10} {row['weights']:8} {cells}")
    print(f"{seconds:.0f} s")


if __name__ == "__main__":
    main()
