"""Quality at matched tokens: AR perplexity vs diffusion ELBO bound, held-out accuracy after SFT.

    bash examples/quickstart.sh && python bench/pipeline_quality.py --home llada-home

Reads the quick start's runs (ar-base, dlm-base, ar-chat, dlm-chat) and prints one table. The AR
figure is an exact perplexity; the diffusion figure is an upper bound (Monte Carlo ELBO).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def evaluate(home: str, run: str, *extra: str) -> dict:
    command = [sys.executable, "-m", "llada_cli", "--home", home, "eval", run, "--json", *extra]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default="llada-home")
    parser.add_argument("--max-rows", default="32")
    parser.add_argument("--mc-num", default="32")
    args = parser.parse_args()
    print(
        f"{'run':<10} {'kind':<10} {'tokens':>8} {'bits/tok':>9} {'ppl':>9}  {'held-out fwd / rev / all':>26}"
    )
    for run in ("ar-base", "dlm-base", "ar-chat", "dlm-chat"):
        heldout = ["--heldout"] if run.endswith("chat") else ["--no-heldout"]
        report = evaluate(args.home, run, "--max-rows", args.max_rows, "--mc-num", args.mc_num, *heldout)
        lik = report["likelihood"]
        ppl = f"{lik['perplexity']:.2f}" + ("" if lik["exact"] else " (bound)")
        accuracy = "-"
        if "heldout" in report:
            h = report["heldout"]
            accuracy = " / ".join(f"{h[g]['accuracy']:.0%}" for g in ("forward", "reverse", "all"))
        trained = json.loads(
            subprocess.run(
                [sys.executable, "-m", "llada_cli", "--home", args.home, "runs", "show", run, "--json"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        ).get("tokens", 0)
        print(
            f"{run:<10} {report['kind']:<10} {trained:>8,} {lik['bits_per_token']:>9.3f} {ppl:>9}"
            f"  {accuracy:>26}"
        )


if __name__ == "__main__":
    main()
