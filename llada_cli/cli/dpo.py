"""`llada dpo`: direct preference optimisation of a fine-tuned AR or diffusion run."""

from __future__ import annotations

import typer

from ..engine.objective_configs import DiffusionDPOConfig
from .common import cli_errors
from .options import Group, with_configs
from .training import Base, TrainingOptions, build_request, run_training, training_options


@cli_errors
@with_configs(
    **training_options(
        'builtin (the corpus\'s preference pairs), or a .jsonl of {"prompt" or "messages", "chosen", '
        '"rejected"} rows.',
        Group(DiffusionDPOConfig, "DPO (--mc-num and --vrpo: diffusion runs)"),
        fine_tuning=True,
    )
)
def dpo(ctx: typer.Context, base: Base = None, *, options: TrainingOptions) -> None:
    """Prefer the chosen answers over the rejected ones, against the base as a frozen reference.
    AR: exact likelihoods; diffusion: ELBO estimates with LLaDA 1.5's variance reduction."""
    run_training(ctx, build_request(ctx, None, "dpo", base, options))
