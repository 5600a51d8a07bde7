"""The training commands' shared option groups, and running a stage with progress output."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..engine.config import DataConfig, Kind, ModelConfig, Stage, TrainConfig, model_config_from_preset
from ..engine.errors import LladaError
from ..engine.options import option_names
from ..engine.run_options import RunOptions, StartOptions, TokenizerOptions
from ..engine.runs.registry import Registry, default_home
from .common import complete_run_name, err, globals_of
from .options import Given, Group
from .progress import TrainProgress

if TYPE_CHECKING:
    from ..engine.training.request import StageRequest

RUN, MODEL, TRAIN = "Run and data", "Model shape", "Training"
RUN_GROUPS = {
    "run": Group(RunOptions, RUN),
    "start": Group(StartOptions, MODEL),
    "tokenizer": Group(TokenizerOptions, MODEL),
    "shape": Group(ModelConfig, MODEL, unset_default="preset"),
    "train": Group(TrainConfig, TRAIN),
}


def data_group(help: str) -> Group:
    return Group(DataConfig, RUN, help={"data": help})


@dataclass(frozen=True)
class TrainingOptions:
    """What a training command was given, per option group (RUN_GROUPS plus data and objective)."""

    run: Given[RunOptions]
    start: Given[StartOptions]
    shape: Given[ModelConfig]
    train: Given[TrainConfig]
    tokenizer: Given[TokenizerOptions]
    data: Given[DataConfig]
    objective: Given


Base = Annotated[
    str | None,
    typer.Option(
        "--base",
        "--load-from",
        help="Run to fine-tune (AR or diffusion, name/name@step/path); with --resume, the run's own.",
        rich_help_panel=RUN,
        autocompletion=complete_run_name,
    ),
]


def training_options(data_help: str, objective: Group, fine_tuning: bool = False) -> dict[str, Any]:
    """`with_configs` arguments of a training command: its option groups, passed as one `options`.
    Fine-tuning takes the base run's shape: only what it may change is offered (the row length,
    the context, dropout: see training/starting_point.py); the other shape options stay accepted,
    checked against the base, for the seed's command lines."""
    groups = dict(RUN_GROUPS)
    if fine_tuning:
        hidden_start = option_names(StartOptions) - {"max_position_embeddings", "inference_rope_scaling"}
        groups["start"] = replace(groups["start"], hide=frozenset(hidden_start))
        hidden_shape = frozenset(option_names(ModelConfig) - {"seq_len", "dropout"})
        groups["shape"] = replace(groups["shape"], hide=hidden_shape, unset_default="the base run's")
    return dict(into=("options", TrainingOptions), **groups, data=data_group(data_help), objective=objective)


def build_request(
    ctx: typer.Context, kind: Kind | None, stage: Stage, parent: str | None, options: TrainingOptions
) -> StageRequest:
    """The engine's request from the options the user gave; the global --seed and --device fill in."""
    # loads torch: here, not at the top, so that --help and shell completion stay quick
    from ..engine.training.request import StageRequest

    g = globals_of(ctx)
    start = options.start.build()
    shape = options.shape
    given = (options.start, shape, options.objective, options.train, options.data)  # what the run is asked
    return StageRequest(
        kind=kind,
        stage=stage,
        run=options.run.build(device=g.device),
        train=options.train.build(seed=g.seed),
        data=options.data.build(),
        start=start,
        tokenizer=options.tokenizer.build(),
        model=model_config_from_preset(start.preset, **shape.values),
        objective=options.objective.build(),
        given=frozenset().union(*(group.names for group in given)),
        seq_len=shape.values.get("seq_len"),
        parent=parent,
        command=["llada", *sys.argv[1:]],
    )


def run_training(ctx: typer.Context, request: StageRequest) -> None:
    from ..engine.runtime.distributed import World  # loads torch, as build_request does
    from ..engine.training.stages import run_stage
    from .launch import launch

    g = globals_of(ctx)
    if request.run.devices > 1 and World.current().world_size == 1:  # start the processes, as torchrun
        raise typer.Exit(launch(request.run.devices, _without_devices(sys.argv[1:])))
    try:
        with TrainProgress(request.run.run_name, g.verbosity) as progress:
            run = run_stage(g.registry, request, on_event=progress)
    except KeyboardInterrupt:
        err.print(interrupted_message(g.registry, request), highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    if g.verbosity >= 0 and World.current().is_main:
        err.print(f"run saved in {run.path}", highlight=False)


def interrupted_message(registry: Registry, request: StageRequest) -> str:
    """Which run stopped, where it will continue from, and the command that continues it."""
    name = request.run.run_name
    try:
        step = registry.existing(name).latest_step()
    except LladaError:  # stopped before the run existed: nothing to resume
        return f"interrupted before run '{name}' started; nothing was saved"
    words = ["llada", *([] if registry.home == default_home() else ["--home", str(registry.home)])]
    words += ["pretrain", str(request.kind)] if request.stage == "pretrain" else [request.stage]
    words += ["--run-name", name, "--resume"]
    if request.run.devices > 1:
        words += ["--devices", str(request.run.devices)]
    where = "has no checkpoint yet; resuming starts it over" if step is None else f"resumes from step {step}"
    return f"interrupted: run '{name}' {where}: {shlex.join(words)}"


def _without_devices(argv: list[str]) -> list[str]:
    """The command line minus --devices N (each process is one device)."""
    kept, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--devices":
            skip = True
        elif not word.startswith("--devices="):
            kept.append(word)
    return kept
