"""The quick start's recipe (examples/quickstart.toml) for the benches that start from its runs,
their evaluation on the builtin benchmark, and the arguments every such bench takes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from quality import SETS, Bench, mean_std, positive, scores

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


def train_quick_start(bench: Bench, seed: int, names: Iterable[str], *extra: str) -> None:
    """The recipe's runs `names` of one seed, each named NAME-sSEED and started from its parent of
    the same seed, with `extra` flags after the recipe's."""
    for name in names:
        words = [w if w not in RECIPE else f"{w}-s{seed}" for w in RECIPE[name]]
        bench.train(f"{name}-s{seed}", seed, *words, *extra)


def benchmark(bench: Bench, run: str, seed: int, *flags: str) -> dict:
    """`llada eval RUN --no-likelihood` as fractions per set and language (quality.scores)."""
    report = bench.llada("--seed", str(seed), "eval", run, "--json", "--no-likelihood", *flags)
    return scores(json.loads(report)["accuracy"])


def set_stats(results: Sequence[dict]) -> dict:
    """The mean accuracy per set over seeds, and its sample standard deviation under "std"."""
    stats = {s: mean_std([r[s] for r in results]) for s in SETS}
    return {**{s: stats[s][0] for s in SETS}, "std": {s: stats[s][1] for s in SETS}}


def bench_parser(doc: str, home: str) -> argparse.ArgumentParser:
    """The arguments of a bench over seeds of the quick start: --home, --seeds, --fresh, --json."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("bench-home") / home, help="registry of the runs")
    parser.add_argument("--seeds", type=positive, default=1, help="seeds 0 .. N-1")
    parser.add_argument("--fresh", action="store_true", help="retrain every run")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return parser
