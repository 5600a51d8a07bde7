"""The `llada` command: global options and the subcommands."""

from __future__ import annotations

import functools
import os
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

from ..engine.errors import UsageError
from ..engine.runs.registry import default_home
from ..engine.runtime import DEVICE_NAMES, check_device_name
from . import (
    chat,
    compare,
    data,
    dpo,
    evaluate,
    export,
    grpo,
    pipeline,
    plot,
    pretrain,
    runs,
    sample,
    serve,
    sft,
    sweep,
)
from .commandline import default_map, load_tables
from .common import Globals, check_home, err, flag
from .root import BEFORE_COMMAND, HelpCommand, LaterSetupCommand, RootGroup

# torch takes a 32-bit thread count, and OpenMP starts them all: more than any machine has cores is refused
MAX_THREADS = 1024

app = typer.Typer(
    name="llada",
    cls=RootGroup,
    help="Train, fine-tune, sample and compare masked-diffusion language models next to an AR baseline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data.app, name="data")
app.add_typer(pretrain.app, name="pretrain")
app.command("sft", cls=HelpCommand)(sft.sft)
app.command("dpo", cls=HelpCommand)(dpo.dpo)
app.command("grpo", cls=HelpCommand)(grpo.grpo)
app.command("sample", cls=HelpCommand)(sample.sample)
app.command("chat", cls=HelpCommand)(chat.chat)
app.command("compare", cls=HelpCommand)(compare.compare)
app.command("eval", cls=HelpCommand)(evaluate.evaluate)
app.command("sweep", cls=HelpCommand)(sweep.sweep)
app.command("plot", cls=LaterSetupCommand)(plot.plot)  # loads no torch
app.command("pipeline", cls=LaterSetupCommand)(pipeline.pipeline)
app.command("export", cls=HelpCommand)(export.export)
app.command("serve", cls=HelpCommand)(serve.serve)
app.add_typer(runs.app, name="runs")


def _print_version(value: bool) -> None:
    if value:
        try:
            number = metadata.version("llada-cli")
        except metadata.PackageNotFoundError:
            number = "dev"
        typer.echo(f"llada {number}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="LLADA_HOME",
            help="Registry root (runs, data, caches).",
            show_default="the user data folder, e.g. ~/.local/share/llada",
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", envvar="LLADA_DEVICE", help=f"{DEVICE_NAMES}.")] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Default seed for every command.")] = 0,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            envvar="LLADA_THREADS",
            min=1,
            max=MAX_THREADS,
            help="CPU threads for torch (default: one per core that other processes leave idle).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More log lines.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only results and errors.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML file of defaults for any command; flags win.")
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    idle_threads = ctx.obj is IDLE_THREADS
    home = (home or default_home()).expanduser()
    try:
        check_home(home)
        check_device_name(device)
    except UsageError as error:
        typer.echo(f"error: {error.render(flag)}", err=True)
        raise typer.Exit(2) from None
    ctx.obj = Globals(
        home=home,
        device=device,
        seed=seed,
        verbosity=-1 if quiet else (1 if verbose else 0),
    )
    if config is not None:
        try:
            ctx.default_map = default_map(ctx.command, load_tables(config), str(config))
        except UsageError as error:
            typer.echo(f"error: {error.render(flag)}", err=True)
            raise typer.Exit(2) from None
    ctx.meta[BEFORE_COMMAND] = functools.partial(_use_threads, threads, idle_threads)


def _use_threads(threads: int | None, idle_threads: bool, ctx: typer.Context) -> None:
    """torch's thread count, set as the command starts: --help and completion load no torch."""
    from ..engine.runtime.device import idle_cores, use_threads  # loads torch

    used = use_threads(idle_cores() if threads is None and idle_threads else threads)
    root = ctx.find_root()
    if root.obj.verbosity > 0 and root.invoked_subcommand not in ("runs", "plot", "data"):
        err.print(f"torch threads: {used}", highlight=False)


# main()'s ctx.obj for the callback: torch then gets one thread per core that other processes leave
# idle, unless --threads / LLADA_THREADS say otherwise (in-process callers keep torch's default)
IDLE_THREADS = object()


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app(prog_name="llada", obj=IDLE_THREADS)
