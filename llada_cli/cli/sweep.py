"""`llada sweep RUN`: a grid of diffusion sampler settings on one model, accuracy against speed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..engine.errors import UsageError
from ..engine.evaluation.sweep import (
    DEFAULT_GRID,
    batch_differences,
    builtin_questions,
    questions_from_file,
    run_sweep,
)
from ..engine.figures.canvas import figure_path
from ..engine.figures.curves import plot_sweep
from ..engine.run_options import WeightsOptions
from .common import cli_errors, complete_run_of, counted, err, globals_of, out, print_json
from .options import Given, with_configs
from .progress import counting, waiting
from .sample import WEIGHTS_GROUP

if TYPE_CHECKING:
    from .. import api


@cli_errors
@with_configs(weights=WEIGHTS_GROUP)
def sweep(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="A diffusion run.", autocompletion=complete_run_of("diffusion"))],
    questions_file: Annotated[
        Path | None,
        typer.Option(
            "--prompts-file", help='.jsonl of {"prompt", "answer"} (default: the builtin benchmark).'
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use the first N questions.", min=1)] = None,
    gen_length: Annotated[
        int | None, typer.Option(help="Answer slots (default: what the context leaves, at most 128).", min=1)
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Questions per batch.", min=1)] = 8,
    chat: Annotated[
        bool, typer.Option("--chat/--no-chat", help="Use the chat template (default on).")
    ] = True,
    out_arg: Annotated[
        str,
        typer.Option(
            "--out",
            help="Figure of accuracy against tokens/s, Pareto front marked (.png, .pdf, .svg, ...), or a "
            "folder for sweep.png (one that exists, or ending in / to make it).",
        ),
    ] = "sweep.png",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    *,
    weights: Given[WeightsOptions],
) -> None:
    """Accuracy, tokens/s, forward passes per token and agreement with the exact sampler for each
    setting (methods, thresholds, caches, block lengths, editing); then whether batching changes
    any answer at temperature 0."""
    # loads torch: here, not at the top, so that --help and shell completion stay quick
    from .. import api

    out_path = figure_path(out_arg, "sweep.png")  # a format matplotlib writes, before the sweep runs
    g = globals_of(ctx)
    model = api.load(run, device=g.device, home=g.home, ema=weights.build().ema)
    if model.kind != "diffusion":
        raise UsageError(f"{model.name} is an AR run; sweep compares diffusion samplers")
    questions = questions_from_file(questions_file, limit) if questions_file else builtin_questions(limit)

    def answer(prompts: list[str], options: dict[str, Any]) -> list[api.Result]:
        length: dict[str, Any] = {"gen_length": gen_length} if gen_length else {}  # a sampler option
        return model.generate(prompts, chat=chat, seed=g.seed, **length, **options)

    batch = min(batch_size, len(questions))  # the batch the questions fill: what is measured
    if g.verbosity >= 0:
        err.print(
            f"{counted(len(questions), 'question')} x {len(DEFAULT_GRID)} settings on {model.name}, "
            f"in batches of {batch}",
            highlight=False,
        )
    with counting("sampler settings", g.verbosity) as on_progress:
        points = run_sweep(questions, answer, DEFAULT_GRID, batch, on_progress)
    differing: list[int] = []
    if batch > 1:
        with waiting("answering one question at a time (batch check)", g.verbosity):
            differing = batch_differences(questions, answer, {}, batch)
    slots = f"{gen_length} answer slots" if gen_length else "answers as long as the context allows"
    plot_sweep(points, out_path, f"{model.name}: {counted(len(questions), 'question')}, {slots}")
    if as_json:
        report = {"run": model.name, "questions": len(questions), "points": [p.to_dict() for p in points]}
        print_json({**report, "batch_size": batch, "batch_differences": differing, "plot": str(out_path)})
        return
    out.print(_table(points))
    what = f"batch {batch} vs one at a time (default sampler, temperature 0)"
    if batch == 1:
        out.print("no batch check: one question a batch")
    elif differing:
        out.print(f"[bold red]{len(differing)} answers differ[/] with {what}: questions {differing}")
    else:
        out.print(f"every answer is the same with {what}")
    out.print(f"plot: {out_path}", highlight=False)


def _table(points) -> Table:
    table = Table()
    table.add_column("setting")
    for name in ("accuracy", "tokens/s", "forwards/token", "= exact"):
        table.add_column(name, justify="right")
    table.add_column("front", justify="center")
    for p in points:
        table.add_row(
            p.label,
            f"{p.accuracy:.1%}",
            f"{p.tokens_per_second:,.1f}",
            f"{p.forwards_per_token:.2f}",
            f"{p.agreement:.0%}",
            "*" if p.pareto else "",
        )
    return table
