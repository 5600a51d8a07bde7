"""The builtin benchmark: what AR, diffusion from AR and diffusion from scratch learn at matched tokens.

    python bench/quality.py [--json] [--fresh] [--home DIR]

Three arms of the same shape train on the builtin corpus with the same batch and steps:
- ar: AR pretraining for --pretrain-steps, then AR SFT;
- diffusion-from-ar: the AR run's checkpoint at half its steps, continued as a diffusion model for
  the other half (the Nano-LLaDA path), then diffusion SFT;
- diffusion-scratch: diffusion pretraining for --pretrain-steps, then diffusion SFT.
So every arm pretrains on the same number of tokens and fine-tunes on the same number again.
Each chat model then answers the three question sets of the benchmark (exact match):
seen (asked in SFT: memorisation), forward (held-out facts asked the way they were taught:
retrieval) and reverse (held-out facts asked object-first: the reversal curse).
The table gives tokens, wall time, perplexity (AR, exact) or its ELBO bound (diffusion) on
held-out pretraining rows, and the three accuracies; a PNG plots accuracy against training tokens
(every SFT checkpoint) for each arm. Runs already trained with the same command are reused
(`--fresh` retrains); their wall time is kept in <home>/quality-bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from llada_cli.engine.runinfo import RunInfo

ARMS = ("ar", "diffusion-from-ar", "diffusion-scratch")
SETS = ("seen", "forward", "reverse")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("bench-home/quality"), help="registry of the runs")
    parser.add_argument("--fresh", action="store_true", help="retrain every run")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--pretrain-steps", type=int, default=1600)
    parser.add_argument("--sft-steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--sft-learning-rate", type=float, default=1e-3)
    parser.add_argument("--size", default="--preset tiny --vocab-size 2048", help="model shape flags")
    parser.add_argument("--curve-points", type=int, default=4, help="SFT checkpoints evaluated per arm")
    parser.add_argument("--png", type=Path, default=None, help="default: <home>/quality.png")
    return parser.parse_args()


class Bench:
    """Runs `llada` commands in one registry, reusing runs whose command is unchanged."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home = args.home.resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self.ledger_path = self.home / "quality-bench.json"
        self.ledger = {} if args.fresh else self._read_ledger()
        self.env = dict(os.environ, LLADA_HOME=str(self.home))

    def _read_ledger(self) -> dict:
        return json.loads(self.ledger_path.read_text()) if self.ledger_path.is_file() else {}

    def llada(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "llada_cli", *args], env=self.env, capture_output=True, text=True
        )
        if result.returncode:
            sys.exit(f"llada {' '.join(args)} failed:\n{result.stderr[-2000:]}")
        return result.stdout

    def train(self, name: str, *command: str) -> float:
        """Train run `name` unless it completed with this very command; its wall time in seconds."""
        command = [*command, "--run-name", name, "--overwrite"]
        done = self.ledger.get(name)
        run_json = self.home / "runs" / name / "run.json"
        completed = run_json.is_file() and RunInfo.load(run_json).status == "completed"
        if done and done["command"] == command and completed:
            log(f"{name}: reused ({done['seconds']:.0f} s when trained)")
            return done["seconds"]
        log(f"{name}: training")
        start = time.perf_counter()
        self.llada(*command)
        seconds = time.perf_counter() - start
        self.ledger[name] = {"command": command, "seconds": seconds}
        tmp = self.ledger_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.ledger, indent=1))
        tmp.replace(self.ledger_path)
        return seconds

    def metrics(self, name: str) -> list[dict]:
        lines = (self.home / "runs" / name / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def tokens_at(self, name: str, step: int) -> int:
        return max(m["tokens"] for m in self.metrics(name) if m["step"] <= step)

    def checkpoints(self, name: str) -> list[int]:
        folder = self.home / "runs" / name / "checkpoints"
        return sorted(int(p.name.removeprefix("step-")) for p in folder.glob("step-*"))

    def accuracy(self, run: str) -> dict[str, float]:
        report = json.loads(self.llada("eval", run, "--json", "--no-likelihood", "--answer-length", "24"))
        return {s: report["accuracy"][s]["accuracy"] for s in SETS}

    def likelihood(self, run: str) -> dict:
        report = json.loads(self.llada("eval", run, "--json", "--no-questions", "--max-rows", "16"))
        return report["likelihood"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def steps(count: int) -> list[str]:
    """--max-steps with a single validation at the end (the bench reports its own figures)."""
    return ["--max-steps", str(count), "--eval-every", str(count)]


def run_arm(bench: Bench, arm: str) -> dict:
    a = bench.args
    size = a.size.split()
    train = ["--batch-size", str(a.batch_size), "--log-every", "1"]  # token counts at every checkpoint
    half = a.pretrain_steps // 2
    pretrain = [*train, "--learning-rate", str(a.learning_rate)]
    seconds = {}
    seconds["ar"] = bench.train(
        "ar-base", "pretrain", "ar", *size, *pretrain, *steps(a.pretrain_steps),
        "--save-every", str(half), "--keep-checkpoints", "0",
    )  # fmt: skip
    if arm == "ar":
        base, kind, pre_seconds, pre_tokens = (
            "ar-base",
            "ar",
            seconds["ar"],
            bench.tokens_at("ar-base", 10**9),
        )
    elif arm == "diffusion-from-ar":
        base, kind = "dlm-from-ar-base", "diffusion"
        own = bench.train(
            base, "pretrain", "diffusion", "--init-from", f"ar-base@{half}", *pretrain,
            *steps(a.pretrain_steps - half),
        )  # fmt: skip
        pre_seconds = own + seconds["ar"] * half / a.pretrain_steps
        pre_tokens = bench.tokens_at("ar-base", half) + bench.tokens_at(base, 10**9)
    else:
        base, kind = "dlm-scratch-base", "diffusion"
        pre_seconds = bench.train(base, "pretrain", "diffusion", *size, *pretrain, *steps(a.pretrain_steps))
        pre_tokens = bench.tokens_at(base, 10**9)
    chat = base.removesuffix("-base") + "-chat"
    every = max(1, a.sft_steps // a.curve_points)
    sft_seconds = bench.train(
        chat, "sft", "--base", base, *train, "--learning-rate", str(a.sft_learning_rate),
        *steps(a.sft_steps), "--save-every", str(every), "--keep-checkpoints", "0",
    )  # fmt: skip
    curve = []
    for step in bench.checkpoints(chat):
        log(f"{chat}@{step}: evaluating")
        curve.append({"tokens": pre_tokens + bench.tokens_at(chat, step), **bench.accuracy(f"{chat}@{step}")})
    final = curve[-1]
    likelihood = bench.likelihood(base)
    return {
        "arm": arm,
        "kind": kind,
        "tokens": final["tokens"],
        "seconds": round(pre_seconds + sft_seconds, 1),
        "perplexity": likelihood["perplexity"],
        "perplexity_is_bound": not likelihood["exact"],
        "bits_per_token": likelihood["bits_per_token"],
        **{s: final[s] for s in SETS},
        "curve": curve,
    }


def plot(arms: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(SETS), figsize=(12, 3.6), sharey=True)
    for ax, question_set in zip(axes, SETS, strict=True):
        for arm in arms:
            points = arm["curve"]
            ax.plot(
                [p["tokens"] / 1e6 for p in points], [p[question_set] for p in points], "o-", label=arm["arm"]
            )
        ax.set_title(question_set)
        ax.set_xlabel("training tokens (M)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("exact-match accuracy")
    axes[-1].legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def table(arms: list[dict]) -> str:
    header = f"{'arm':<18} {'tokens':>9} {'seconds':>8} {'ppl (bound)':>12}"
    lines = [header + f" {'seen':>6} {'forward':>8} {'reverse':>8}"]
    for arm in arms:
        ppl = f"{arm['perplexity']:.2f}" + (" b" if arm["perplexity_is_bound"] else "  ")
        lines.append(
            f"{arm['arm']:<18} {arm['tokens']:>9,} {arm['seconds']:>8.0f} {ppl:>12} "
            f"{arm['seen']:>6.0%} {arm['forward']:>8.0%} {arm['reverse']:>8.0%}"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    bench = Bench(args)
    start = time.perf_counter()
    arms = [run_arm(bench, arm) for arm in ARMS]
    png = args.png or bench.home / "quality.png"
    plot(arms, png)
    document = {
        "arms": arms,
        "png": str(png),
        "settings": {k: str(v) for k, v in vars(args).items() if k not in ("json", "fresh")},
        "bench_seconds": round(time.perf_counter() - start, 1),
    }
    if args.json:
        print(json.dumps(document, indent=1))
        return
    print(table(arms))
    print(
        f"accuracy curves: {png}; bench wall time {document['bench_seconds']:.0f} s (reused runs count as 0)"
    )


if __name__ == "__main__":
    main()
