"""`llada plot`: training curves of one or more runs (a figure or a text chart), or a sampling
trace as a decoding-order heatmap."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..engine.errors import UsageError
from ..engine.figures.canvas import figure_path, safe_name_part, save_figure
from ..engine.figures.curves import collect_series, curves_figure, curves_name
from ..engine.figures.trace import MAX_PANELS, read_trace, trace_figure
from ..engine.jsonl import read_metrics
from .common import cli_errors, complete_run_name, err, globals_of, out
from .text_chart import chart_lines


@cli_errors
def plot(
    ctx: typer.Context,
    runs: Annotated[
        list[str] | None, typer.Argument(help="Runs to overlay.", autocompletion=complete_run_name)
    ] = None,
    out_file: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Figure file (.png, .pdf, .svg, ...) or a folder (one that exists, or ending in / to "
            "make it; default: loss-RUN1-RUN2.png in the current folder; with --trace, the trace's name "
            "with .png).",
        ),
    ] = None,
    metric: Annotated[
        str,
        typer.Option(
            help="Comma-separated metrics.jsonl fields, e.g. loss,val_loss,lr,block_size,tokens_per_s."
        ),
    ] = "loss,val_loss",
    smooth: Annotated[
        float,
        typer.Option(
            help="EMA weight in [0, 1) for training series; validation is drawn as measured.",
            min=0.0,
            max=0.999,
        ),
    ] = 0.0,
    log_y: Annotated[bool, typer.Option("--log-y", help="Logarithmic y axis.")] = False,
    x_axis: Annotated[str, typer.Option("--x", help="step or tokens.")] = "step",
    text: Annotated[
        bool, typer.Option("--text", help="Print the curves as a text chart instead of writing a figure.")
    ] = False,
    trace: Annotated[Path | None, typer.Option(help="Draw a `llada sample --trace` file instead.")] = None,
    prompts: Annotated[
        str | None,
        typer.Option(
            help=f"With --trace: the prompts to draw, e.g. 2 or 1-4,7 (default: all, at most {MAX_PANELS})."
        ),
    ] = None,
) -> None:
    """Plot loss curves (several runs on one figure) or a decoding-order heatmap."""
    if trace is not None:
        _plot_trace(trace, bool(runs), out_file, prompts, text)
        return
    if prompts is not None:
        raise UsageError("--prompts picks the prompts of a --trace figure; give --trace FILE")
    if not runs:
        raise UsageError("give one or more runs to plot (see `llada runs list`), or --trace FILE")
    if x_axis not in ("step", "tokens"):
        raise UsageError(f"--x {x_axis}: use step or tokens")
    if text and out_file is not None:
        raise UsageError("--text prints the chart instead of writing a figure; drop --out")
    metrics = [m.strip() for m in metric.split(",") if m.strip()]
    if not metrics:
        raise UsageError("--metric: give one or more metrics.jsonl fields, e.g. loss,val_loss")
    resolved = [globals_of(ctx).registry.resolve(name)[0] for name in runs]
    names = list(dict.fromkeys(r.name for r in resolved))
    target = None if text else figure_path(out_file, curves_name(metrics, names))
    kinds = {r.name: r.kind for r in resolved}
    records = {r.name: read_metrics(r.metrics_path, f"{r.name}/metrics.jsonl") for r in resolved}
    found = collect_series(records, metrics, x_axis, smooth)
    if target is None:
        for line in chart_lines(found, kinds, x_axis, log_y, out.width):
            out.print(line, markup=False, highlight=False)
        return
    save_figure(curves_figure(found, kinds, x_axis, log_y, title=" vs ".join(names)), target)
    if out_file is None and err.is_terminal:
        for line in chart_lines(found, kinds, x_axis, log_y, err.width):
            err.print(line, markup=False, highlight=False)
    out.print(str(target), highlight=False)


def _plot_trace(trace: Path, runs: bool, out_file: str | None, prompts: str | None, text: bool) -> None:
    if runs:
        raise UsageError("--trace draws a sampling trace; do not give runs with it")
    if text:
        raise UsageError("--text draws training curves; a trace is drawn as a figure")
    target = figure_path(out_file, safe_name_part(trace.stem) + ".png")
    read = read_trace(trace)
    figure = trace_figure(read, prompt_rows(prompts, read.batch))
    out.print(str(save_figure(figure, target)), highlight=False)


def prompt_rows(text: str | None, batch: int) -> list[int] | None:
    """0-based batch rows from 1-based numbers and ranges of ASCII digits: '2', '1-4,7'; a number
    past the trace's `batch` prompts is refused before a range of it is made."""
    if text is None:
        return None
    rows: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        last = last or first
        if not all(n.isascii() and n.isdigit() for n in (first, last)):
            raise UsageError(f"--prompts {text}: give prompt numbers from 1, e.g. 2 or 1-4,7")
        if len(last.lstrip("0")) > len(str(batch)) or int(last) > batch:  # never int() of 5000 digits
            raise UsageError(f"--prompts {text}: the trace has prompts 1-{batch}")
        if not 1 <= int(first) <= int(last):
            raise UsageError(f"--prompts {text}: give prompt numbers from 1, e.g. 2 or 1-4,7")
        rows += range(int(first) - 1, int(last))
    return rows
