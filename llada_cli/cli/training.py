"""The training commands' shared option groups, and running a stage with progress output."""

from __future__ import annotations

import subprocess
import sys

import typer

from ..engine.config import DataConfig, ModelConfig, TrainConfig, model_config_from_preset
from ..engine.distributed import World
from ..engine.stages import RunOptions, StageRequest, StartOptions, run_stage
from ..engine.tokenizer import TokenizerOptions
from .common import err, globals_of
from .options import Given, Group
from .progress import TrainProgress

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


def build_request(
    ctx: typer.Context,
    kind: str,
    stage: str,
    parent: str | None,
    *,
    run: Given[RunOptions],
    start: Given[StartOptions],
    shape: Given[ModelConfig],
    train: Given[TrainConfig],
    data: Given[DataConfig],
    tokenizer: Given[TokenizerOptions],
    objective: Given | None = None,
) -> StageRequest:
    """The engine's request from the options the user gave; the global --seed and --device fill in."""
    g = globals_of(ctx)
    start_options = start.build()
    return StageRequest(
        kind=kind,
        stage=stage,
        run=run.build(device=g.device),
        train=train.build(seed=g.seed),
        data=data.build(),
        start=start_options,
        tokenizer=tokenizer.build(),
        model=model_config_from_preset(start_options.preset, **shape.values),
        model_given=shape.names,
        objective=objective.build() if objective is not None else None,
        objective_given=objective.names if objective is not None else frozenset(),
        seq_len=shape.values.get("seq_len"),
        parent=parent,
        command=["llada", *sys.argv[1:]],
    )


def run_training(ctx: typer.Context, request: StageRequest) -> None:
    g = globals_of(ctx)
    if request.run.devices > 1 and World.current().world_size == 1:  # start the processes, as torchrun
        raise typer.Exit(launch(request.run.devices, _without_devices(sys.argv[1:])))
    with TrainProgress(request.run.run_name, g.verbosity) as progress:
        run = run_stage(g.registry, request, on_event=progress)
    if g.verbosity >= 0 and World.current().is_main:
        err.print(f"run saved in {run.path}", highlight=False)


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


def launch(devices: int, argv: list[str]) -> int:
    """Run `llada argv` in `devices` processes under torchrun on this machine; returns its exit code.

    torchrun ends every process when one fails, so a failure cannot leave the others waiting.
    """
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}"]
    return subprocess.call([*torchrun, "-m", "llada_cli", *argv])
