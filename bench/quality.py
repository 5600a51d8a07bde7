"""The builtin benchmark: what AR, diffusion from AR and diffusion from scratch learn at matched tokens.

    python bench/quality.py [--json] [--fresh] [--seeds N] [--home DIR]

Three arms of the same shape train on the builtin corpus with the same batch and steps:
- ar: AR pretraining for --pretrain-steps, then AR SFT;
- diffusion-from-ar: the AR run's checkpoint at half its steps, continued as a diffusion model for
  the other half (the Nano-LLaDA path), then diffusion SFT;
- diffusion-scratch: diffusion pretraining for --pretrain-steps, then diffusion SFT.
So every arm pretrains on the same number of tokens and fine-tunes on the same number again.
Every arm trains once per seed 0 .. --seeds - 1 (`llada --seed S ...`; runs are named
`ar-base-s0`, `ar-chat-s0`, `dlm-from-ar-base-s1`, ...; diffusion-from-ar starts from the AR run of
its own seed).
Each chat model then answers the three question sets of the benchmark (exact match):
seen (asked in SFT: memorisation), forward (held-out facts asked the way they were taught:
retrieval) and reverse (held-out facts asked object-first: the reversal curse), each in English
and Chinese.
The table gives tokens, wall time per seed, perplexity (AR, exact) or its ELBO bound (diffusion)
on held-out pretraining rows, the three accuracies as mean ± sample standard deviation over seeds
(0 for one seed), the number of questions per set and language, the accuracies per language, and
for each diffusion arm the training tokens it needed to reach the AR arm's mean seen and forward
accuracy: the tokens of the first SFT checkpoint (of --curve-points) whose accuracy, averaged over
seeds, is at least AR's, or "not within" the budget. A PNG plots accuracy against training tokens
(every SFT checkpoint, mean and standard deviation over seeds) for each arm. Runs already trained
with the same command are reused (`--fresh` retrains); their wall time is kept in
<home>/quality-bench.json.

`--json` prints one document: {"arms": [...], "png", "settings", "bench_seconds"}; each arm holds
"arm", "kind", "seeds", "tokens", "seconds", "perplexity", "perplexity_is_bound",
"bits_per_token", the mean accuracy per set as a fraction ("seen", "forward", "reverse"), "std"
(per set), "by_lang" ({"en": {set: mean}, "zh": ...}), "questions" ({set: questions per
language}), "tokens_to_ar" (diffusion arms: {"seen": int | "not within", "forward": ...}),
"curve" (per SFT checkpoint: step, mean tokens, mean and std per set) and "per_seed" (the figures
of each seed's runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from llada_cli.engine.runs.record import RunInfo

ARMS = ("ar", "diffusion-from-ar", "diffusion-scratch")
SETS = ("seen", "forward", "reverse")
TO_AR = ("seen", "forward")  # the sets whose AR accuracy the diffusion arms are timed to reach
NOT_WITHIN = "not within"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("bench-home/quality"), help="registry of the runs")
    parser.add_argument("--fresh", action="store_true", help="retrain every run")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--seeds", type=positive, default=1, help="seeds per arm (0 .. N-1)")
    parser.add_argument("--pretrain-steps", type=int, default=1600)
    parser.add_argument("--sft-steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--sft-learning-rate", type=float, default=1e-3)
    parser.add_argument("--size", default="--preset tiny --vocab-size 2048", help="model shape flags")
    parser.add_argument("--curve-points", type=int, default=4, help="SFT checkpoints evaluated per arm")
    parser.add_argument("--png", type=Path, default=None, help="default: <home>/quality.png")
    return parser.parse_args()


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


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

    def train(self, name: str, seed: int, *command: str) -> float:
        """Train run `name` (global --seed `seed`) unless it completed with this very command; its
        wall time in seconds."""
        command = ["--seed", str(seed), *command, "--run-name", name, "--overwrite"]
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

    def accuracy(self, run: str, seed: int) -> dict:
        """Accuracy per set, per language ("by_lang") and the question counts ("questions")."""
        report = self.llada(
            "--seed", str(seed), "eval", run, "--json", "--no-likelihood", "--answer-length", "24"
        )
        return scores(json.loads(report)["accuracy"])

    def likelihood(self, run: str, seed: int) -> dict:
        report = self.llada("--seed", str(seed), "eval", run, "--json", "--no-questions", "--max-rows", "16")
        return json.loads(report)["likelihood"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def steps(count: int) -> list[str]:
    """--max-steps with a single validation at the end (the bench reports its own figures)."""
    return ["--max-steps", str(count), "--eval-every", str(count)]


# ------------------------------------------------------------------------ statistics (pure functions)


def scores(accuracy: dict) -> dict:
    """`llada eval --json`'s "accuracy" groups ("seen", "seen/en", ...: correct and total) as exact
    fractions per set, per language ("by_lang") and the questions per set and language."""

    def fraction(group: str) -> float:
        return accuracy[group]["correct"] / max(1, accuracy[group]["total"])

    langs = sorted({group.split("/", 1)[1] for group in accuracy if "/" in group})
    questions: dict = {}
    for s in SETS:
        counts = {lang: accuracy[f"{s}/{lang}"]["total"] for lang in langs}
        same = len(set(counts.values())) == 1
        questions[s] = next(iter(counts.values())) if same else counts  # one count when all languages agree
    return {
        **{s: fraction(s) for s in SETS},
        "by_lang": {lang: {s: fraction(f"{s}/{lang}") for s in SETS} for lang in langs},
        "questions": questions,
    }


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); the deviation of a single value is 0."""
    if not values:
        raise ValueError("no values")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def mean_curve(curves: Sequence[Sequence[dict]]) -> list[dict]:
    """Seeds' accuracy-vs-tokens curves (the same checkpoints each) averaged point by point:
    step, mean tokens, mean accuracy per set and its standard deviation ("std")."""
    averaged = []
    for points in zip(*curves, strict=True):
        if len({p["step"] for p in points}) != 1:
            raise ValueError(f"seeds checkpointed at different steps: {[p['step'] for p in points]}")
        stats = {s: mean_std([p[s] for p in points]) for s in SETS}
        averaged.append(
            {
                "step": points[0]["step"],
                "tokens": round(statistics.fmean(p["tokens"] for p in points)),
                **{s: round(stats[s][0], 4) for s in SETS},
                "std": {s: round(stats[s][1], 4) for s in SETS},
            }
        )
    return averaged


def tokens_to_reach(curve: Sequence[dict], question_set: str, target: float) -> int | str:
    """Tokens of the first curve point whose `question_set` accuracy is at least `target`, else
    "not within" (the curve ends below it)."""
    for point in curve:
        if point[question_set] >= target - 1e-9:  # the figures are rounded to 4 decimals
            return point["tokens"]
    return NOT_WITHIN


def summarise(arm: str, kind: str, per_seed: list[dict]) -> dict:
    """One arm's figures over its seeds: means, sample standard deviations, the mean curve."""
    stats = {s: mean_std([r[s] for r in per_seed]) for s in SETS}
    langs = per_seed[0]["by_lang"]
    curve = mean_curve([r["curve"] for r in per_seed])
    return {
        "arm": arm,
        "kind": kind,
        "seeds": len(per_seed),
        "tokens": curve[-1]["tokens"],
        "seconds": round(statistics.fmean(r["seconds"] for r in per_seed), 1),
        "perplexity": round(statistics.fmean(r["perplexity"] for r in per_seed), 4),
        "perplexity_is_bound": per_seed[0]["perplexity_is_bound"],
        "bits_per_token": round(statistics.fmean(r["bits_per_token"] for r in per_seed), 5),
        **{s: round(stats[s][0], 4) for s in SETS},
        "std": {s: round(stats[s][1], 4) for s in SETS},
        "by_lang": {
            lang: {s: round(statistics.fmean(r["by_lang"][lang][s] for r in per_seed), 4) for s in SETS}
            for lang in langs
        },
        "questions": per_seed[0]["questions"],
        "curve": curve,
        "per_seed": [{k: v for k, v in r.items() if k != "curve"} for r in per_seed],
    }


# ------------------------------------------------------------------------------------ the arms


def run_seed(bench: Bench, arm: str, seed: int) -> dict:
    """Train (or reuse) one seed of `arm` and evaluate its SFT checkpoints."""
    a = bench.args
    size = a.size.split()
    train = ["--batch-size", str(a.batch_size), "--log-every", "1"]  # token counts at every checkpoint
    half = a.pretrain_steps // 2
    pretrain = [*train, "--learning-rate", str(a.learning_rate)]
    suffix = f"-s{seed}"
    ar_base = f"ar-base{suffix}"
    ar_seconds = bench.train(
        ar_base, seed, "pretrain", "ar", *size, *pretrain, *steps(a.pretrain_steps),
        "--save-every", str(half), "--keep-checkpoints", "0",
    )  # fmt: skip
    if arm == "ar":
        base, pre_seconds, pre_tokens = ar_base, ar_seconds, bench.tokens_at(ar_base, 10**9)
    elif arm == "diffusion-from-ar":
        base = f"dlm-from-ar-base{suffix}"
        own = bench.train(
            base, seed, "pretrain", "diffusion", "--init-from", f"{ar_base}@{half}", *pretrain,
            *steps(a.pretrain_steps - half),
        )  # fmt: skip
        pre_seconds = own + ar_seconds * half / a.pretrain_steps
        pre_tokens = bench.tokens_at(ar_base, half) + bench.tokens_at(base, 10**9)
    else:
        base = f"dlm-scratch-base{suffix}"
        pre_seconds = bench.train(
            base, seed, "pretrain", "diffusion", *size, *pretrain, *steps(a.pretrain_steps)
        )
        pre_tokens = bench.tokens_at(base, 10**9)
    chat = base.replace("-base", "-chat")
    every = max(1, a.sft_steps // a.curve_points)
    sft_seconds = bench.train(
        chat, seed, "sft", "--base", base, *train, "--learning-rate", str(a.sft_learning_rate),
        *steps(a.sft_steps), "--save-every", str(every), "--keep-checkpoints", "0",
    )  # fmt: skip
    curve = []
    for step in bench.checkpoints(chat):
        log(f"{chat}@{step}: evaluating")
        score = bench.accuracy(f"{chat}@{step}", seed)
        curve.append({"step": step, "tokens": pre_tokens + bench.tokens_at(chat, step), **score})
    final = curve[-1]
    likelihood = bench.likelihood(base, seed)
    return {
        "seed": seed,
        "runs": {"base": base, "chat": chat},
        "tokens": final["tokens"],
        "seconds": round(pre_seconds + sft_seconds, 1),
        "perplexity": likelihood["perplexity"],
        "perplexity_is_bound": not likelihood["exact"],
        "bits_per_token": likelihood["bits_per_token"],
        **{s: final[s] for s in SETS},
        "by_lang": final["by_lang"],
        "questions": final["questions"],
        "curve": [{k: p[k] for k in ("step", "tokens", *SETS)} for p in curve],
    }


def run_arm(bench: Bench, arm: str) -> dict:
    kind = "ar" if arm == "ar" else "diffusion"
    return summarise(arm, kind, [run_seed(bench, arm, seed) for seed in range(bench.args.seeds)])


def add_tokens_to_ar(arms: list[dict]) -> None:
    """Each diffusion arm: the tokens its mean curve needed to reach AR's mean seen / forward accuracy."""
    ar = next(a for a in arms if a["kind"] == "ar")
    for arm in arms:
        if arm["kind"] == "diffusion":
            arm["tokens_to_ar"] = {s: tokens_to_reach(arm["curve"], s, ar[s]) for s in TO_AR}


# ------------------------------------------------------------------------------------ output


def plot(arms: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(SETS), figsize=(12, 3.6), sharey=True)
    for ax, question_set in zip(axes, SETS, strict=True):
        for arm in arms:
            points = arm["curve"]
            ax.errorbar(
                [p["tokens"] / 1e6 for p in points],
                [p[question_set] for p in points],
                yerr=[p["std"][question_set] for p in points] if arm["seeds"] > 1 else None,
                fmt="o-",
                capsize=3,
                label=arm["arm"],
            )
        ax.set_title(question_set)
        ax.set_xlabel("training tokens (M)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    seeds = arms[0]["seeds"]
    axes[0].set_ylabel("exact-match accuracy" + (f" (mean ± std, {seeds} seeds)" if seeds > 1 else ""))
    axes[-1].legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def pm(mean: float, std: float) -> str:
    return f"{mean:.0%} ± {std:.0%}"


def table(arms: list[dict]) -> str:
    seeds = arms[0]["seeds"]
    langs = list(arms[0]["by_lang"])
    questions = ", ".join(
        f"{s} {n}" if isinstance(n, int) else f"{s} " + "/".join(str(n[lang]) for lang in langs)
        for s, n in arms[0]["questions"].items()
    )
    lines = [
        f"accuracy: mean ± sample std over {seeds} seed{'s' if seeds > 1 else ''}; "
        f"questions per language ({', '.join(langs)}): {questions}",
        f"{'arm':<18} {'tokens':>9} {'seconds':>8} {'ppl (bound)':>12} {'seen':>10} {'forward':>10} "
        f"{'reverse':>10} {'to AR seen':>11} {'to AR fwd':>11}",
    ]
    for arm in arms:
        ppl = f"{arm['perplexity']:.2f}" + (" b" if arm["perplexity_is_bound"] else "  ")
        accuracies = " ".join(f"{pm(arm[s], arm['std'][s]):>10}" for s in SETS)
        to_ar = arm.get("tokens_to_ar", {})
        reach = " ".join(f"{format_tokens(to_ar.get(s, '-')):>11}" for s in TO_AR)
        lines.append(
            f"{arm['arm']:<18} {arm['tokens']:>9,} {arm['seconds']:>8.0f} {ppl:>12} {accuracies} {reach}"
        )
    lines.append("")
    columns = " ".join(f"{s + ' ' + lang:>11}" for s in SETS for lang in langs)
    lines.append(f"{'by language (mean)':<18} {columns}")
    for arm in arms:
        cells = " ".join(f"{arm['by_lang'][lang][s]:>11.0%}" for s in SETS for lang in langs)
        lines.append(f"{arm['arm']:<18} {cells}")
    lines.append(
        f"to AR: tokens at the first SFT checkpoint whose mean accuracy reaches AR's ({NOT_WITHIN}: none)"
    )
    return "\n".join(lines)


def format_tokens(value: int | str) -> str:
    return f"{value:,}" if isinstance(value, int) else value


def main() -> None:
    args = parse_args()
    bench = Bench(args)
    start = time.perf_counter()
    arms = [run_arm(bench, arm) for arm in ARMS]
    add_tokens_to_ar(arms)
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
