"""`llada grpo`: reinforcement learning of a fine-tuned AR or diffusion run from a verifiable reward."""

from __future__ import annotations

import typer

from ..engine.objective_configs import DiffusionGRPOConfig
from .common import cli_errors
from .options import Group, with_configs
from .training import Base, TrainingOptions, build_request, run_training, training_options


@cli_errors
@with_configs(
    **training_options(
        'builtin (the corpus\'s RL questions), or a .jsonl of {"prompt" or "messages", "answer"} rows.',
        Group(DiffusionGRPOConfig, "GRPO (--estimator, --prompt-mask-prob: diffusion runs)"),
        fine_tuning=True,
    )
)
def grpo(ctx: typer.Context, base: Base = None, *, options: TrainingOptions) -> None:
    """Sample groups of answers, reward those that match, and move towards the better ones (GRPO),
    with a KL penalty to the base. AR: exact likelihoods; diffusion: masked-pass estimates."""
    run_training(ctx, build_request(ctx, None, "grpo", base, options))
