"""`llada pretrain ar` and `llada pretrain diffusion`."""

from __future__ import annotations

from typing import Annotated

import typer

from ..engine.objective_configs import ARPretrainConfig, DiffusionPretrainConfig
from .common import cli_errors, complete_run_of
from .options import Group, with_configs
from .root import HelpCommand, HelpGroup
from .training import RUN, TRAIN, TrainingOptions, build_request, run_training, training_options

app = typer.Typer(
    cls=HelpGroup,
    help="Pretrain an AR model, or a diffusion model (optionally from an AR run).",
    no_args_is_help=True,
)
DATA_HELP = "builtin, minimind, or a .jsonl/.txt file."
InitFrom = Annotated[
    str | None,
    typer.Option(
        "--init-from",
        "--init-from-minimind",
        help="AR run (name, name@step or folder) or checkpoint file to continue as diffusion.",
        rich_help_panel=RUN,
        autocompletion=complete_run_of("ar"),
    ),
]


# Nano-LLaDA's script switches, accepted and ignored: llada always trains with a tokenizer
# (`--train`, `--use-tokenizer`) and never joins rows into one string (`--jsonl-sep`).
TrainSwitch = Annotated[bool, typer.Option("--train", hidden=True)]
UseTokenizerSwitch = Annotated[bool, typer.Option("--use-tokenizer", hidden=True)]


@app.command("ar", cls=HelpCommand)
@cli_errors
@with_configs(**training_options(DATA_HELP, Group(ARPretrainConfig, TRAIN)))
def pretrain_ar(ctx: typer.Context, *, options: TrainingOptions) -> None:
    """Pretrain an autoregressive (causal) model: next-token cross entropy."""
    run_training(ctx, build_request(ctx, "ar", "pretrain", None, options))


@app.command("diffusion", cls=HelpCommand)
@cli_errors
@with_configs(**training_options(DATA_HELP, Group(DiffusionPretrainConfig, "Diffusion objective")))
def pretrain_diffusion(
    ctx: typer.Context,
    init_from: InitFrom = None,
    train_switch: TrainSwitch = False,
    use_tokenizer: UseTokenizerSwitch = False,
    jsonl_sep: Annotated[str | None, typer.Option("--jsonl-sep", hidden=True)] = None,
    *,
    options: TrainingOptions,
) -> None:
    """Pretrain a masked diffusion model; --init-from continues an AR run (attention turns bidirectional)."""
    run_training(ctx, build_request(ctx, "diffusion", "pretrain", init_from, options))
