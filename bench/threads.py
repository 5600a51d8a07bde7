"""Thread count vs a busy neighbour: how long a tiny-model diffusion sample takes on a shared CPU.

    python bench/threads.py [--json] [--repeats N]

For each thread count (1 .. cores) and each neighbour (none; one busy Python loop, one core; a
torch matmul loop using every core, the worst case), the median wall time of one 32-step sample
of a `tiny` model (random weights, gen length 32, one prompt). torch's default is one thread per
core; an OpenMP thread that shares its core with another busy process waits for it at every
parallel region, which is what the busy columns show. The ratio column is busy / idle at the
same thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from llada_cli.engine.config import PRESETS
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.sampling.diffusion import DiffusionSettings, generate_diffusion

NEIGHBOURS = {
    "idle": None,
    "python loop": [sys.executable, "-c", "while True: pass"],
    "torch matmuls": [
        sys.executable,
        "-c",
        "import torch\na = torch.randn(512, 512)\nwhile True: a = (a @ a).tanh()",
    ],
}


def sample_seconds(model: Transformer, threads: int, repeats: int) -> float:
    torch.set_num_threads(threads)
    settings = DiffusionSettings(gen_length=32, steps=32, block_length=32)
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        started = time.perf_counter()
        generate_diffusion(model, [[1, 2, 3, 4]], settings, mask_id=5, eos_ids={0})
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Transformer(PRESETS["tiny"]).eval()
    cores = os.cpu_count() or 1
    rows = []
    for name, command in NEIGHBOURS.items():
        neighbour = subprocess.Popen(command) if command else None
        try:
            if neighbour is not None:
                time.sleep(1.0)  # let it get busy (a bench, not a test)
            for threads in range(1, cores + 1):
                rows.append(
                    {
                        "neighbour": name,
                        "threads": threads,
                        "seconds": sample_seconds(model, threads, args.repeats),
                    }
                )
        finally:
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()
    idle = {r["threads"]: r["seconds"] for r in rows if r["neighbour"] == "idle"}
    for row in rows:
        row["vs_idle"] = round(row["seconds"] / idle[row["threads"]], 2)
    if args.json:
        print(json.dumps({"cores": cores, "rows": rows}, indent=2))
        return
    print(f"cores {cores}, tiny preset, 32-step diffusion sample, median of {args.repeats}")
    print(f"{'neighbour':<15} {'threads':>7} {'seconds':>9} {'vs idle':>8}")
    for row in rows:
        print(f"{row['neighbour']:<15} {row['threads']:>7} {row['seconds']:>9.3f} {row['vs_idle']:>7.2f}x")


if __name__ == "__main__":
    main()
