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

import json
import time

from quality import SETS, Bench, log, pm
from recipe import CHATS, bench_parser, benchmark, set_stats, train_quick_start


def train_seed(bench: Bench, seed: int, decay: float) -> None:
    train_quick_start(bench, seed, ("ar-base", "dlm-base"), "--batch-size", "16")
    train_quick_start(bench, seed, CHATS.values(), "--batch-size", "16", "--ema-decay", str(decay))


def main() -> None:
    parser = bench_parser(__doc__, "ema")
    parser.add_argument("--decay", type=float, default=0.99)
    args = parser.parse_args()
    started = time.perf_counter()
    bench = Bench(args)
    per: dict[tuple[str, str], list[dict]] = {}
    for seed in range(args.seeds):
        train_seed(bench, seed, args.decay)
        for kind, chat in CHATS.items():
            for weights in ("ema", "raw"):
                log(f"{chat}-s{seed}: eval, {weights} weights")
                which = "--ema" if weights == "ema" else "--no-ema"
                per.setdefault((kind, weights), []).append(benchmark(bench, f"{chat}-s{seed}", seed, which))
    rows = []
    for (kind, weights), results in per.items():
        rows.append(
            {
                "kind": kind,
                "weights": weights,
                **set_stats(results),
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
