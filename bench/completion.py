"""Shell completion and --help: how long `llada` takes to answer, each in a fresh process.

    python bench/completion.py [--runs N] [--json]

Times, as the median wall time of --runs runs (after one untimed run that warms the caches):
- completion: what bash runs on `llada sample <TAB>` (`_LLADA_COMPLETE=complete_bash`), which
  builds every command and lists the run names of the registry ($LLADA_HOME or the default);
- help: `llada --help`;
- import torch: `python -c "import torch"` alone, for scale: building the commands used to load
  torch (and more of it) before either could answer.
Each runs in a fresh subprocess, llada as `python -m llada_cli`. Prints the seconds of each with
the machine's cores and its AVX2/AVX512/AMX flags.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from llada_cli.engine.runtime.device import cpu_vector_flags

LLADA = [sys.executable, "-m", "llada_cli"]
COMPLETING = {"_LLADA_COMPLETE": "complete_bash", "COMP_WORDS": "llada sample ", "COMP_CWORD": "2"}
CASES = {
    "completion": (LLADA, COMPLETING),
    "help": ([*LLADA, "--help"], {}),
    "import torch": ([sys.executable, "-c", "import torch"], {}),
}


def seconds(command: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs + 1):  # the first run warms up
        started = time.perf_counter()
        subprocess.run(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = [
        {"what": what, "seconds": round(seconds(command, env, args.runs), 3)}
        for what, (command, env) in CASES.items()
    ]
    machine = {"cores": os.cpu_count() or 1, "cpu_flags": sorted(cpu_vector_flags())}
    if args.json:
        print(json.dumps({**machine, "runs": args.runs, "rows": rows}, indent=2))
        return
    flags = " ".join(machine["cpu_flags"]) or "no AVX2/AVX512/AMX"
    print(f"cores {machine['cores']}, {flags}; median of {args.runs} runs")
    print(f"{'what':<14} {'seconds':>8}")
    for row in rows:
        print(f"{row['what']:<14} {row['seconds']:>8.3f}")


if __name__ == "__main__":
    main()
