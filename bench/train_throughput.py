"""Training throughput: llada's AR and diffusion steps vs a plain reference step, same shapes, same run.

    python bench/train_throughput.py [--preset small] [--batch-size 8] [--seq-len N] [--steps 6]
        [--dtype fp32,bf16] [--compile] [--json]

The reference is the same transformer written in the most direct PyTorch (explicit attention
matmuls and softmax, no fused kernels); a ratio >= 1.0 means llada is at least as fast.
Prints tokens/s and peak memory (RSS on CPU, allocator peak on CUDA); --compile adds llada with
its blocks compiled (the `--compile` training flag) and its ratio to the same plain step.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from llada_cli.engine.config import PRESETS, ModelConfig
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.objectives.ar import ARPretrainObjective
from llada_cli.engine.objectives.diffusion_pretraining import DiffusionPretrainObjective
from llada_cli.engine.objectives.losses import PretrainBatch
from llada_cli.engine.runtime.device import autocast_for, compile_blocks

VOCAB = 6400


class PlainBlock(nn.Module):
    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        self.c = c
        self.n1, self.n2 = nn.RMSNorm(c.hidden_size), nn.RMSNorm(c.hidden_size)
        self.qkv = nn.Linear(c.hidden_size, 3 * c.hidden_size, bias=False)
        self.o = nn.Linear(c.hidden_size, c.hidden_size, bias=False)
        self.gate = nn.Linear(c.hidden_size, c.mlp_size, bias=False)
        self.up = nn.Linear(c.hidden_size, c.mlp_size, bias=False)
        self.down = nn.Linear(c.mlp_size, c.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, causal: bool) -> torch.Tensor:
        b, n, _ = x.shape
        h, d = self.c.num_attention_heads, self.c.head_dim
        q, k, v = self.qkv(self.n1(x)).view(b, n, 3, h, d).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        q = q * cos + torch.cat((-q[..., d // 2 :], q[..., : d // 2]), -1) * sin
        k = k * cos + torch.cat((-k[..., d // 2 :], k[..., : d // 2]), -1) * sin
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)
        if causal:
            scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, h * d)
        x = x + self.o(attended)
        y = self.n2(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class PlainModel(nn.Module):
    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        self.c = c
        self.emb = nn.Embedding(c.vocab_size, c.hidden_size)
        self.blocks = nn.ModuleList(PlainBlock(c) for _ in range(c.num_hidden_layers))
        self.norm = nn.RMSNorm(c.hidden_size)
        self.head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        inv = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2).float() / c.head_dim))
        angles = torch.arange(c.seq_len).float()[:, None] * inv
        self.register_buffer("cos", torch.cat((angles, angles), -1).cos())
        self.register_buffer("sin", torch.cat((angles, angles), -1).sin())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.emb(ids)
        n = ids.shape[1]
        for block in self.blocks:
            x = block(x, self.cos[:n], self.sin[:n], self.c.causal)
        return self.head(self.norm(x))


def plain_ar_loss(model: PlainModel, ids: torch.Tensor) -> torch.Tensor:
    logits = model(ids[:, :-1])
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def plain_diffusion_loss(model: PlainModel, ids: torch.Tensor, mask_id: int) -> torch.Tensor:
    b, n = ids.shape
    p = (1 - 1e-3) * torch.rand(b, 1) + 1e-3
    masked = torch.rand(b, n) < p
    logits = model(torch.where(masked, mask_id, ids))
    ce = F.cross_entropy(logits.float().transpose(1, 2), ids, reduction="none")
    return (ce * masked / p).sum() / ids.numel()


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tokens_per_second(step, model: nn.Module, batch: torch.Tensor, steps: int, dtype: str) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    device = batch.device

    def one() -> None:
        with autocast_for(device, dtype):
            loss = step(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    one()  # warm-up: allocator, kernels
    started = time.perf_counter()
    for _ in range(steps):
        one()
    return steps * batch.numel() / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=None, help="row length (default: the preset's)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--dtype", default="fp32,bf16", help="bf16 is only fast with AVX512-BF16/AMX or CUDA")
    parser.add_argument("--tracks", default="ar,diffusion,diffusion-wsd")
    parser.add_argument("--compile", action="store_true", help="also time llada with --compile")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    rows = []
    say = (lambda *a: None) if args.json else print
    say(f"device {device}, threads {torch.get_num_threads()}, preset {args.preset}, batch {args.batch_size}")
    say(
        f"{'track':<18} {'dtype':<5} {'llada tok/s':>12} {'compiled':>9} {'plain tok/s':>12}"
        f" {'ratio':>6} {'c.ratio':>7} {'peak MB':>8}"
    )
    for dtype in args.dtype.split(","):
        for track in args.tracks.split(","):
            row = measure(track, dtype, args, device)
            rows.append(row)
            compiled = row.get("compiled_tokens_per_s")
            say(
                f"{row['track']:<18} {dtype:<5} {row['llada_tokens_per_s']:>12,.0f}"
                f" {compiled or 0:>9,.0f} {row['plain_tokens_per_s']:>12,.0f} {row['ratio']:>6.2f}"
                f" {row.get('compiled_ratio', 0):>7.2f} {row['peak_mb']:>8,.0f}"
            )
    if args.json:
        print(json.dumps({"device": str(device), "threads": torch.get_num_threads(), "rows": rows}, indent=1))


def measure(track: str, dtype: str, args: argparse.Namespace, device: torch.device) -> dict:
    """tokens/s of llada's step (eager, and compiled if asked) and of the plain step, one track."""
    objective = objectives()[track]
    config = replace(PRESETS[args.preset], vocab_size=VOCAB, causal=track == "ar")
    config = replace(config, seq_len=args.seq_len or config.seq_len)
    batch = torch.randint(0, VOCAB - 1, (args.batch_size, config.seq_len), device=device)

    def llada_rate(compiled: bool) -> float:
        torch.manual_seed(0)
        model = Transformer(config).to(device)
        if compiled and compile_blocks(model):
            raise SystemExit("torch.compile is unavailable on this machine")
        generator = torch.Generator().manual_seed(0)
        # progress 0.9 (step 9 of 10): the curriculum decays, blocks are smallest ([x_t ; x0] at 2L)
        step = lambda b: objective(model, PretrainBatch(b), generator, 0.9).loss  # noqa: E731
        return tokens_per_second(step, model, batch, args.steps, dtype)

    row = {"track": track, "dtype": dtype, "llada_tokens_per_s": llada_rate(False)}
    if track == "diffusion-wsd":
        row["track"] += f" b={objective.block_size(9, config.seq_len)}"
    if args.compile:
        row["compiled_tokens_per_s"] = llada_rate(True)
    plain = PlainModel(config).to(device)
    if track == "ar":
        loss = lambda b: plain_ar_loss(plain, b)  # noqa: E731
    else:  # the curriculum has no plain twin: it is compared with plain iid_t, the work it replaces
        loss = lambda b: plain_diffusion_loss(plain, b, VOCAB - 1)  # noqa: E731
    row["plain_tokens_per_s"] = tokens_per_second(loss, plain, batch, args.steps, dtype)
    row["ratio"] = row["llada_tokens_per_s"] / row["plain_tokens_per_s"]
    if args.compile:
        row["compiled_ratio"] = row["compiled_tokens_per_s"] / row["plain_tokens_per_s"]
    row["peak_mb"] = peak_memory_mb()
    return row


def objectives() -> dict:
    return {
        "ar": ARPretrainObjective(eos_id=0),
        "diffusion": DiffusionPretrainObjective(mask_id=VOCAB - 1, eos_id=0),
        "diffusion-wsd": DiffusionPretrainObjective(
            mask_id=VOCAB - 1, eos_id=0, use_block_curriculum=True, total_steps=10
        ),
    }


if __name__ == "__main__":
    main()
