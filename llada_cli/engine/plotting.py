"""Figures from metrics.jsonl and sampling traces (matplotlib with the Agg backend, imported lazily)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_path
from .errors import UsageError


@dataclass
class Series:
    label: str
    x: list[float]
    y: list[float]


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line of a killed run
            continue
    return records


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average (TensorBoard-style, bias-corrected), weight in [0, 1)."""
    if weight <= 0:
        return list(values)
    smoothed, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        smoothed.append(average / (1 - weight**i))
    return smoothed


def metric_series(
    run_name: str, records: list[dict[str, Any]], metric: str, x_axis: str, smoothing: float
) -> Series | None:
    points = [(r[x_axis], r[metric]) for r in records if r.get(metric) is not None and x_axis in r]
    if not points:
        return None
    xs, ys = zip(*points, strict=True)
    return Series(f"{run_name} {metric}", list(xs), smooth(ys, smoothing))


def collect_series(
    runs: dict[str, list[dict[str, Any]]], metrics: Sequence[str], x_axis: str, smoothing: float
) -> dict[str, list[Series]]:
    """Series per metric; a metric no run has is an error that lists what the runs do have."""
    found: dict[str, list[Series]] = {}
    for metric in metrics:
        series = [
            s
            for name, records in runs.items()
            if (s := metric_series(name, records, metric, x_axis, smoothing)) is not None
        ]
        if series:
            found[metric] = series
    if not found:
        have = sorted({key for records in runs.values() for r in records for key in r})
        raise UsageError(
            f"none of the runs has {', '.join(metrics)}; fields present: {', '.join(have) or 'none'}"
        )
    return found


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_series(found: dict[str, list[Series]], out: Path, x_axis: str, log_y: bool, title: str) -> Path:
    """Loss-like metrics share one axis; every other metric gets its own panel below."""
    plt = _pyplot()
    loss_panel = [m for m in found if "loss" in m]
    panels = ([loss_panel] if loss_panel else []) + [[m] for m in found if m not in loss_panel]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.6 * len(panels)), squeeze=False, sharex=True)
    for axis, metrics in zip(axes[:, 0], panels, strict=True):
        for metric in metrics:
            for series in found[metric]:
                style = "dashed" if metric.startswith("val") else "solid"
                axis.plot(
                    series.x,
                    series.y,
                    linestyle=style,
                    label=series.label,
                    marker="o" if len(series.x) < 20 else None,
                )
        axis.set_ylabel(" / ".join(metrics))
        if log_y:
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[-1, 0].set_xlabel(x_axis)
    axes[0, 0].set_title(title)
    fig.tight_layout()
    return _save(fig, out, plt)


def plot_trace(events: list[dict[str, Any]], out: Path) -> Path:
    """Heatmap of a sampling trace: for each generated position, the step it was committed at."""
    commits = [e for e in events if e.get("kind", "commit") == "commit" and e.get("row", 0) == 0]
    if not commits:
        raise UsageError("the trace has no commit events")
    plt = _pyplot()
    import numpy as np

    positions = max(e["position"] for e in commits) + 1
    steps = max(e["step"] for e in commits) + 1
    grid = np.full((positions, steps), np.nan)
    for event in commits:
        grid[event["position"], event["step"] :] = event["step"]
    fig, axis = plt.subplots(figsize=(9, max(3, positions / 12)))
    image = axis.imshow(grid, aspect="auto", origin="upper", interpolation="nearest", cmap="viridis")
    fig.colorbar(image, ax=axis, label="step the token was committed")
    axis.set_xlabel("denoising step")
    axis.set_ylabel("answer position")
    axis.set_title(f"decoding order: {len(commits)} tokens in {steps} steps")
    fig.tight_layout()
    return _save(fig, out, plt)


def _save(fig: Any, out: Path, plt: Any) -> Path:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".").lower() or "png", dpi=110)
    plt.close(fig)
    return out


def plot_sweep(points: list[Any], out: Path, title: str) -> Path:
    """Accuracy against tokens/s: each sampler setting a numbered point (the key is beside the
    axes, so close points stay readable), the Pareto front joined and in colour."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5))
    for number, point in enumerate(points, start=1):
        x, y = point.tokens_per_second, 100 * point.accuracy
        ax.scatter(x, y, color="C0" if point.pareto else "C7", zorder=3)
        ax.annotate(str(number), (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
    front = sorted((p for p in points if p.pareto), key=lambda p: p.tokens_per_second)
    ax.plot([p.tokens_per_second for p in front], [100 * p.accuracy for p in front], color="C0")
    key = "\n".join(f"{n}  {p.label}{'  (front)' if p.pareto else ''}" for n, p in enumerate(points, start=1))
    fig.text(0.70, 0.5, key, fontsize=8, va="center", family="monospace")
    fig.subplots_adjust(right=0.68)
    ax.set_xscale("log")
    ax.set_xlabel("new tokens per second (log scale)")
    ax.set_ylabel("accuracy (% exact match)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, out, plt)
