"""`llada sft`: supervised fine-tuning of an AR or a diffusion run on conversations."""

from __future__ import annotations

from typing import Annotated

import typer

from ..engine.config import DataConfig, ModelConfig, TrainConfig
from ..engine.objectives import DiffusionSFTConfig
from ..engine.stages import RunOptions, StartOptions
from ..engine.tokenizer import TokenizerOptions
from .common import cli_errors, complete_run_name
from .options import Given, Group, with_configs
from .training import RUN, RUN_GROUPS, build_request, data_group, run_training

Base = Annotated[
    str,
    typer.Option(
        "--base",
        "--load-from",
        help="Run to fine-tune (AR or diffusion, name/name@step/path).",
        rich_help_panel=RUN,
        autocompletion=complete_run_name,
    ),
]


@cli_errors
@with_configs(
    **RUN_GROUPS,
    data=data_group("builtin, minimind, or a conversations .jsonl."),
    objective=Group(DiffusionSFTConfig, "SFT (diffusion runs)"),
)
def sft(
    ctx: typer.Context,
    base: Base,
    *,
    run: Given[RunOptions],
    start: Given[StartOptions],
    shape: Given[ModelConfig],
    train: Given[TrainConfig],
    data: Given[DataConfig],
    tokenizer: Given[TokenizerOptions],
    objective: Given[DiffusionSFTConfig],
) -> None:
    """Fine-tune on conversations (ChatML). AR: loss on answers only; diffusion: prompts never masked."""
    groups = dict(
        run=run, start=start, shape=shape, train=train, data=data, tokenizer=tokenizer, objective=objective
    )
    run_training(ctx, build_request(ctx, "sft", "sft", base, **groups))
