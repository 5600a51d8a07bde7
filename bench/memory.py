"""Activation memory of one training step, with and without --gradient-checkpointing.

    python bench/memory.py [--preset small] [--batch-size 32] [--json]

Each configuration runs in a fresh process: build the model and an AdamW optimizer, take one warm
step (so the optimizer state exists), then measure the peak resident memory of a second step
above the memory before it. That difference is what the step's activations (and gradients'
temporaries) cost; the diffusion objective is LLaDA's iid_t loss in fp32 on random tokens.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

STEP = """
import ctypes, resource, sys, torch
from dataclasses import replace
from llada_cli.engine.config import PRESETS
from llada_cli.engine.objectives.diffusion_pretraining import DiffusionPretrainObjective
from llada_cli.engine.objectives.losses import PretrainBatch
from llada_cli.engine.model.transformer import Transformer
preset, batch_size, checkpointing = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
config = replace(PRESETS[preset], vocab_size=6401, causal=False)
torch.manual_seed(0)
model = Transformer(config)
model.gradient_checkpointing = checkpointing
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
objective = DiffusionPretrainObjective(mask_id=6400, eos_id=0, variable_length_prob=0.0)
batch = PretrainBatch(torch.randint(0, 6400, (batch_size, config.seq_len)))
generator = torch.Generator().manual_seed(0)
def step():
    objective(model, batch, generator, 0.5).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
step()
ctypes.CDLL("libc.so.6").malloc_trim(0)
before = rss_mb()
step()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(before, peak)
"""


def measure(preset: str, batch_size: int, checkpointing: bool) -> dict[str, float]:
    args = [preset, str(batch_size), "1" if checkpointing else "0"]
    out = subprocess.run([sys.executable, "-c", STEP, *args], capture_output=True, text=True, check=True)
    before, peak = (float(x) for x in out.stdout.split())
    return {"before_mb": round(before), "peak_mb": round(peak), "step_mb": round(peak - before)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = {
        "plain": measure(args.preset, args.batch_size, False),
        "gradient checkpointing": measure(args.preset, args.batch_size, True),
    }
    saved = 1 - rows["gradient checkpointing"]["step_mb"] / max(1, rows["plain"]["step_mb"])
    if args.json:
        print(
            json.dumps(
                {"preset": args.preset, "batch_size": args.batch_size, "rows": rows, "saved": round(saved, 3)}
            )
        )
        return
    print(f"preset {args.preset}, batch {args.batch_size}, one diffusion training step (fp32)")
    print(f"{'':<24} {'before MB':>10} {'peak MB':>9} {'step MB':>9}")
    for name, row in rows.items():
        print(f"{name:<24} {row['before_mb']:>10,} {row['peak_mb']:>9,} {row['step_mb']:>9,}")
    print(f"activation memory saved by checkpointing: {saved:.0%}")


if __name__ == "__main__":
    main()
