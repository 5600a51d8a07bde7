"""`llada plot`: training curves of one or more runs (PNG), or a sampling trace heatmap."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from ..engine.errors import UsageError
from ..engine.plotting import Series, collect_series, plot_series, plot_trace, read_metrics
from .common import cli_errors, complete_run_name, err, globals_of, out

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 48) -> str:
    """A compact text chart of a series, resampled to `width` characters."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "(no finite values)"
    if len(values) > width:
        values = [values[int(i * len(values) / width)] for i in range(width)]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARKS[int((v - low) / span * (len(SPARKS) - 1))] for v in values)


def print_text_chart(found: dict[str, list[Series]]) -> None:
    for series_list in found.values():
        for s in series_list:
            err.print(f"{s.label:<32} {sparkline(s.y)}  {s.y[0]:.4g} -> {s.y[-1]:.4g}", highlight=False)


@cli_errors
def plot(
    ctx: typer.Context,
    runs: Annotated[
        list[str] | None, typer.Argument(help="Runs to overlay.", autocompletion=complete_run_name)
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="PNG file (default: in the first run's folder).")
    ] = None,
    metric: Annotated[
        str,
        typer.Option(
            help="Comma-separated metrics.jsonl fields, e.g. loss,val_loss,lr,block_size,tokens_per_s."
        ),
    ] = "loss,val_loss",
    smooth: Annotated[float, typer.Option(help="EMA smoothing weight in [0, 1).", min=0.0, max=0.999)] = 0.0,
    log_y: Annotated[bool, typer.Option("--log-y", help="Logarithmic y axis.")] = False,
    x_axis: Annotated[str, typer.Option("--x", help="step or tokens.")] = "step",
    trace: Annotated[Path | None, typer.Option(help="Draw a `llada sample --trace` file instead.")] = None,
) -> None:
    """Plot loss curves (several runs on one figure) or a decoding-order heatmap."""
    if trace is not None:
        if runs:
            raise UsageError("--trace draws a sampling trace; do not give runs with it")
        path = plot_trace(_read_trace(trace), out_file or trace.with_suffix(".png"))
        out.print(str(path), highlight=False)
        return
    if not runs:
        raise UsageError("give one or more runs to plot (see `llada runs list`), or --trace FILE")
    if x_axis not in ("step", "tokens"):
        raise UsageError(f"--x {x_axis}: use step or tokens")
    registry = globals_of(ctx).registry
    resolved = [registry.resolve(name)[0] for name in runs]
    found = collect_series(
        {r.name: read_metrics(r.metrics_path) for r in resolved},
        [m.strip() for m in metric.split(",") if m.strip()],
        x_axis,
        smooth,
    )
    target = out_file or resolved[0].path / "loss.png"
    plot_series(found, target, x_axis, log_y, title=" vs ".join(r.name for r in resolved))
    if out_file is None and err.is_terminal:
        print_text_chart(found)
    out.print(str(target), highlight=False)


def _read_trace(path: Path) -> list[dict]:
    if not path.is_file():
        raise UsageError(f"trace file not found: {path}")
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise UsageError(f"{path}:{number}: invalid JSON ({error.msg})") from None
    return events
