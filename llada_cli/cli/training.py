"""From the training commands' options to an engine StageRequest, and running it with progress."""

from __future__ import annotations

import sys
from typing import Any

import typer

from ..engine.config import model_config_from_preset
from ..engine.stages import StageRequest, run_stage
from ..engine.trainer import TrainConfig
from .common import err, globals_of, plain_value, plain_values
from .progress import TrainProgress

SHAPE_FLAGS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_kv_heads", "seq_len")
TRAIN_FIELDS = (
    "batch_size",
    "grad_accum",
    "max_steps",
    "epochs",
    "learning_rate",
    "lr_schedule",
    "warmup_steps",
    "lr_stable_ratio",
    "min_lr_ratio",
    "weight_decay",
    "grad_clip",
    "dtype",
    "eval_every",
    "eval_batches",
    "save_every",
    "keep_checkpoints",
    "log_every",
    "early_stop_patience",
    "early_stop_min_delta",
)
INFERENCE_ROPE_FACTOR = 16.0  # MiniMind and Nano-LLaDA


def build_request(
    ctx: typer.Context,
    kind: str,
    stage: str,
    opts: dict[str, Any],
    data: str,
    parent: str | None,
    objective: dict[str, Any],
) -> StageRequest:
    g = globals_of(ctx)
    seed = opts["seed"] if opts["seed"] is not None else g.seed
    shape = {name: opts[name] for name in SHAPE_FLAGS}
    rope_scaling = INFERENCE_ROPE_FACTOR if opts["inference_rope_scaling"] else None
    model = model_config_from_preset(
        opts["preset"].value,
        **shape,
        rope_theta=opts["rope_theta"],
        tie_embeddings=opts["tie_embeddings"],
        qk_norm=opts["qk_norm"],
        rope_scaling=rope_scaling,
    )
    shape |= {
        "rope_scaling": rope_scaling,
        "rope_theta": opts["rope_theta"],
        "qk_norm": opts["qk_norm"],
        "tie_embeddings": opts["tie_embeddings"],
    }
    train = TrainConfig(**{name: plain_value(opts[name]) for name in TRAIN_FIELDS}, seed=seed)
    return StageRequest(
        kind=kind,
        stage=stage,
        run_name=opts["run_name"],
        model=model,
        shape_overrides=shape,
        train=train,
        data=data,
        jsonl_field=opts["jsonl_field"],
        val_fraction=opts["val_fraction"],
        parent=parent,
        tokenizer_path=opts["tokenizer"],
        vocab_size=opts["vocab_size"],
        objective=plain_values(objective),
        overwrite=opts["overwrite"],
        resume=opts["resume"],
        device=opts["device"] or g.device,
        command=["llada", *sys.argv[1:]],
    )


def train(ctx: typer.Context, request: StageRequest) -> None:
    if request.resume and request.overwrite:
        err.print("error: --resume and --overwrite are incompatible: pick one", highlight=False)
        raise typer.Exit(2)
    g = globals_of(ctx)
    with TrainProgress(request.run_name, g.verbosity) as progress:
        run = run_stage(g.registry, request, on_event=progress)
    if g.verbosity >= 0:
        err.print(f"run saved in {run.path}", highlight=False)
