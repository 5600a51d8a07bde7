"""Training curves from metrics.jsonl, and the sampler sweep's accuracy/speed figure.

The curves figure: one colour per run, training solid and validation dashed, the loss panel's y
axis in nats per token (AR: cross entropy; diffusion: the ELBO bound), every other metric in its
own panel below, the key to the right of the axes. `--smooth` is an exponential moving average
of the training series only: validation points, and values a schedule sets (lr, block_size,
epoch), are drawn as measured."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .canvas import RUN_COLOURS, new_figure, safe_name_part, save_figure

KIND_NAME = {"ar": "AR", "diffusion": "diffusion"}
METRIC_LABELS = {
    "lr": "learning rate",
    "tokens_per_s": "tokens per second",
    "block_size": "block size (tokens)",
    "mask_rate": "masked share of answer tokens",
    "epoch": "epochs",
    "reward": "reward (GRPO: share of sampled answers right)",
    "kl": "KL to the base, per token",
    "flat_groups": "groups whose answers all scored the same",
    "reward_accuracy": "pairs whose chosen answer wins",
}
UNSMOOTHED = frozenset({"lr", "block_size", "epoch"})  # set by a schedule: nothing to average out
X_LABELS = {"step": "step", "tokens": "tokens seen"}
TRAIN_STYLES = ("-", "-.", ":")
VALIDATION_STYLES = ("dashed", (0, (6, 2, 1, 2)))


@dataclass
class Series:
    run: str
    metric: str
    x: list[float]
    y: list[float]
    smoothing: float = 0.0  # the EMA weight applied (0: drawn as measured)

    @property
    def label(self) -> str:
        return f"{self.run} {metric_role(self.metric)}"


# ---------------------------------------------------------------------------------------------
# series


def is_validation(metric: str) -> bool:
    return metric.startswith("val_")


def metric_role(metric: str) -> str:
    """What a metric's line is: loss -> train, val_loss -> validation, val_x -> validation x."""
    if metric == "loss":
        return "train"
    if metric == "val_loss":
        return "validation"
    return f"validation {metric[4:]}" if is_validation(metric) else metric


def smoothing_note(smoothing: float) -> str:
    return f" (EMA {smoothing:g})" if smoothing > 0 else ""


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average (TensorBoard-style, bias-corrected), weight in [0, 1)."""
    if weight <= 0:
        return list(values)
    smoothed, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        smoothed.append(average / (1 - weight**i))
    return smoothed


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_series(
    run_name: str, records: list[dict[str, Any]], metric: str, x_axis: str, smoothing: float
) -> Series | None:
    points = [(r[x_axis], r[metric]) for r in records if _number(r.get(metric)) and _number(r.get(x_axis))]
    if not points:
        return None
    xs, ys = zip(*points, strict=True)
    weight = 0.0 if is_validation(metric) or metric in UNSMOOTHED else smoothing
    return Series(run_name, metric, list(xs), smooth(ys, weight), weight)


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


# ---------------------------------------------------------------------------------------------
# labels and layout, shared with the text chart


def panels(metrics: Iterable[str]) -> list[list[str]]:
    """Loss-like metrics share the first panel; every other metric gets its own."""
    metrics = list(metrics)
    losses = [m for m in metrics if "loss" in m]
    return ([losses] if losses else []) + [[m] for m in metrics if m not in losses]


def loss_label(kinds: Iterable[str]) -> str:
    known = {kind for kind in kinds if kind in KIND_NAME}
    if known == {"ar", "diffusion"}:
        return "loss (nats per token)\nAR cross entropy, diffusion ELBO bound"
    if known == {"diffusion"}:
        return "ELBO bound (nats per token)"
    return "loss (nats per token)"


def panel_label(metrics: Sequence[str], found: dict[str, list[Series]], kinds: Iterable[str]) -> str:
    """The y label of a panel; smoothing of a loss panel is noted in the key, of others here."""
    if any("loss" in m for m in metrics):
        return loss_label(kinds)
    metric = metrics[0]
    return METRIC_LABELS.get(metric, metric) + smoothing_note(found[metric][0].smoothing)


def line_styles(metrics: Sequence[str]) -> dict[str, Any]:
    """Training metrics solid (then dash-dot, dotted), validation metrics dashed."""
    styles: dict[str, Any] = {}
    counts = {True: 0, False: 0}
    for metric in metrics:
        validation = is_validation(metric)
        choices = VALIDATION_STYLES if validation else TRAIN_STYLES
        styles[metric] = choices[counts[validation] % len(choices)]
        counts[validation] += 1
    return styles


def run_colours(found: dict[str, list[Series]]) -> dict[str, str]:
    runs = dict.fromkeys(s.run for series in found.values() for s in series)
    return {run: RUN_COLOURS[i % len(RUN_COLOURS)] for i, run in enumerate(runs)}


def curves_name(metrics: Sequence[str], runs: Sequence[str]) -> str:
    """The default file name: `loss-RUN1-RUN2.png` (other metrics by name)."""
    names = dict.fromkeys("loss" if "loss" in m else m for m in metrics)
    return safe_name_part("+".join(names) + "-" + "-".join(runs), 120) + ".png"


# ---------------------------------------------------------------------------------------------
# the figure


def curves_figure(
    found: dict[str, list[Series]], kinds: Mapping[str, str], x_axis: str, log_y: bool, title: str
) -> Any:
    """The training-curves Figure, not yet saved. `kinds`: run name -> run.json `kind`."""
    groups = panels(found)
    colours = run_colours(found)
    fig = new_figure(8, 3.2 * len(groups), constrained=True)
    axes = fig.subplots(len(groups), 1, squeeze=False, sharex=True)[:, 0]
    for axis, metrics in zip(axes, groups, strict=True):
        styles = line_styles(metrics)
        for metric in metrics:
            for series in found[metric]:
                axis.plot(
                    series.x,
                    series.y,
                    color=colours[series.run],
                    linestyle=styles[metric],
                    label=series.label,
                    marker="o" if len(series.x) < 20 else None,
                    markersize=3,
                )
        axis.set_ylabel(panel_label(metrics, found, kinds.values()), fontsize=9)
        if log_y:
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel(X_LABELS.get(x_axis, x_axis))
    axes[0].set_title(title)
    handles = _key(found, groups[0], colours, kinds)
    axes[0].legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8
    )
    return fig


def _key(
    found: dict[str, list[Series]], metrics: Sequence[str], colours: dict[str, str], kinds: Mapping[str, str]
) -> list[Any]:
    """The legend: one entry per run (its colour, its kind), then one per line style."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=colour, linewidth=2.5, label=_run_label(run, kinds.get(run)))
        for run, colour in colours.items()
    ]
    styles = line_styles(metrics)
    for metric in metrics:
        label = metric_role(metric) + smoothing_note(found[metric][0].smoothing)
        handles.append(Line2D([], [], color="0.3", linestyle=styles[metric], label=label))
    return handles


def _run_label(run: str, kind: str | None) -> str:
    return f"{run} ({KIND_NAME[kind]})" if kind in KIND_NAME else run


def plot_sweep(points: list[Any], out: Path, title: str) -> Path:
    return save_figure(sweep_figure(points, title), out)


def sweep_figure(points: list[Any], title: str) -> Any:
    """Accuracy against tokens/s: each sampler setting a numbered point (the key is beside the
    axes), the Pareto front joined and in colour; numbers never cover each other or a point, and
    the log speed axis reads in plain numbers."""
    fig = new_figure(10, 5)
    ax = fig.subplots()
    xy = [(point.tokens_per_second, 100 * point.accuracy) for point in points]
    for (x, y), point in zip(xy, points, strict=True):
        ax.scatter(x, y, s=MARKER_POINTS**2, color="C0" if point.pareto else "C7", zorder=3)
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
    _plain_log_ticks(ax)
    _number_points(ax, xy)
    return fig


MARKER_POINTS = 6  # the diameter of a sweep point, in points


def _plain_log_ticks(ax: Any) -> None:
    """Ticks of the log x axis in plain numbers (1,000, not 10³): decades, or 1-2-5 steps, or more
    within a decade, the first of these to give three ticks; linear steps on a very narrow axis."""
    from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator

    low, high = ax.get_xlim()
    for subs in ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0, 7.0), tuple(range(1, 10))):
        ticks = [t for t in LogLocator(subs=subs).tick_values(low, high) if low <= t <= high]
        if len(ticks) >= 3:
            break
    if len(ticks) < 2:
        ticks = [t for t in MaxNLocator(4).tick_values(low, high) if low <= t <= high]
    ax.set_xticks(ticks, labels=[f"{t:,.15g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def _number_points(ax: Any, xy: list[tuple[float, float]]) -> None:
    """Number each point at the nearest place around it (rings of eight, up and right first) where
    the number stays inside the axes and covers no other number and no point: close points push
    their numbers apart. Measured with the figure's renderer, so the boxes are the drawn ones."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()  # the axes' limits and layout, as they will be saved
    renderer = fig.canvas.get_renderer()
    pixels = fig.dpi / 72
    r = MARKER_POINTS / 2 * pixels
    taken = [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y in ax.transData.transform(xy)]
    frame = ax.get_window_extent(renderer)
    places = _label_places()
    for number, point in enumerate(xy, start=1):
        label = ax.annotate(str(number), point, xytext=places[0][0], textcoords="offset points", fontsize=8)
        for place in places:
            box = _put(label, place, renderer).padded(pixels)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in taken):
                break
        else:  # no free place near the point: the nearest, covering what it must
            box = _put(label, places[0], renderer)
        taken.append(box)


def _put(label: Any, place: tuple[tuple[float, float], str, str], renderer: Any) -> Any:
    """Move a point's number to `place` (an offset in points, its alignments) and measure it."""
    label.xyann, (ha, va) = place[0], place[1:]
    label.set_horizontalalignment(ha)
    label.set_verticalalignment(va)
    return label.get_window_extent(renderer)


def _label_places(rings: int = 6) -> list[tuple[tuple[float, float], str, str]]:
    """Where a number may go around its point: offsets in points, nearest ring first, each ring
    up-right, up-left, down-right, down-left, right, up, left, down; the number's edge faces the point."""
    directions = [(1, 1), (-1, 1), (1, -1), (-1, -1), (1, 0), (0, 1), (-1, 0), (0, -1)]
    places = []
    for ring in range(rings):
        distance = 6 + 8 * ring  # clear of the point's marker, then a number's height apart
        for dx, dy in directions:
            scale = distance / math.hypot(dx, dy)
            ha = {1: "left", 0: "center", -1: "right"}[dx]
            va = {1: "bottom", 0: "center", -1: "top"}[dy]
            places.append(((dx * scale, dy * scale), ha, va))
    return places
