"""Training curves as a text chart: the figure's panels, each with one y scale shared by every
series in it (so equal values sit on the same row) and one x scale, one marker per series."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..engine.figures.curves import X_LABELS, Series, panel_label, panels, smoothing_note

MARKERS = "*o+x#@%&=~"
HEIGHT = 10  # rows of a panel
GUTTER = 9  # columns of the y labels


@dataclass(frozen=True)
class Scale:
    """Maps values in [low, high] (log10 of them when `log`) to cells 0 .. size-1."""

    low: float
    high: float
    size: int
    log: bool = False

    @classmethod
    def over(cls, values: Sequence[float], size: int, log: bool = False) -> Scale:
        shown = [math.log10(v) if log else v for v in values]
        return cls(min(shown), max(shown), size, log)

    def cell(self, value: float) -> int:
        value = math.log10(value) if self.log else value
        if self.high == self.low:
            return (self.size - 1) // 2
        return round((value - self.low) / (self.high - self.low) * (self.size - 1))

    def value(self, cell: int) -> float:
        """The value a cell stands for (the inverse of `cell`)."""
        span = (self.high - self.low) * cell / max(self.size - 1, 1)
        return 10 ** (self.low + span) if self.log else self.low + span


def drawable(series: Series, log: bool) -> list[tuple[float, float]]:
    return [
        (x, y) for x, y in zip(series.x, series.y, strict=True) if math.isfinite(y) and (y > 0 or not log)
    ]


def text_chart(series: Sequence[Series], width: int, x_label: str, log_y: bool = False) -> list[str]:
    """One panel: the plot area, the y labels at top, middle and bottom, the x range, the key."""
    points = [drawable(s, log_y) for s in series]
    every = [p for ps in points for p in ps]
    if not every:
        return ["(no finite values)"]
    plot_width = max(width - GUTTER - 1, 10)
    xs = Scale.over([x for x, _ in every], plot_width)
    ys = Scale.over([y for _, y in every], HEIGHT, log_y)
    grid = [[" "] * plot_width for _ in range(HEIGHT)]
    for marker, series_points in zip(MARKERS * len(series), points, strict=False):
        for x, y in series_points:
            grid[HEIGHT - 1 - ys.cell(y)][xs.cell(x)] = marker
    labelled = {0: HEIGHT - 1, HEIGHT // 2: HEIGHT - 1 - HEIGHT // 2, HEIGHT - 1: 0}  # row -> cell
    lines = []
    for row, cells in enumerate(grid):
        label = f"{ys.value(labelled[row]):.3g}"[: GUTTER - 1] if row in labelled else ""
        lines.append(f"{label:>{GUTTER - 1}} {'┤' if row in labelled else '│'}{''.join(cells)}")
    lines.append(" " * GUTTER + "└" + "─" * plot_width)
    left, right = f"{xs.value(0):.6g}", f"{xs.value(plot_width - 1):.6g} {x_label}"
    lines.append(" " * (GUTTER + 1) + left + right.rjust(plot_width - len(left)))
    key = [
        f"  {m} {s.label}{smoothing_note(s.smoothing)}"
        for m, s in zip(MARKERS * len(series), series, strict=False)
    ]
    return [line[:width] for line in lines + key]


def chart_lines(
    found: dict[str, list[Series]], kinds: Mapping[str, str], x_axis: str, log_y: bool, width: int
) -> list[str]:
    """Every panel of the figure as text, each under its y label."""
    lines: list[str] = []
    for metrics in panels(found):
        series = [s for metric in metrics for s in found[metric]]
        lines += [line[:width] for line in panel_label(metrics, found, kinds.values()).splitlines()]
        lines += text_chart(series, width, X_LABELS.get(x_axis, x_axis), log_y)
        lines.append("")
    return lines[:-1]
