"""`llada sft`: supervised fine-tuning of an AR or a diffusion run on conversations."""

from __future__ import annotations

import typer

from ..engine.objective_configs import DiffusionSFTConfig
from .common import cli_errors
from .options import Group, with_configs
from .training import Base, TrainingOptions, build_request, run_training, training_options


@cli_errors
@with_configs(
    **training_options(
        "builtin, minimind, or a conversations .jsonl.",
        Group(DiffusionSFTConfig, "SFT (diffusion runs)"),
        fine_tuning=True,
    )
)
def sft(ctx: typer.Context, base: Base = None, *, options: TrainingOptions) -> None:
    """Fine-tune on conversations (ChatML). AR: loss on answers only; diffusion: prompts never masked."""
    run_training(ctx, build_request(ctx, None, "sft", base, options))
