"""The decoding-order heatmap of a `llada sample --trace` file: one panel per prompt of the batch.

A trace is JSON lines: a header (`"kind": "header"`: run, prompts, sampler settings, EOS ids),
then one event per token written: `commit` (a masked slot unmasked) or `edit` (a token rewritten
after it was unmasked, by samplers that edit), with its step, answer position and batch row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from ..errors import UsageError, named
from ..jsonl import parse_record
from .canvas import new_figure

MAX_PANELS = 12  # prompts drawn by default; `prompts` picks others
EOS_COLOUR = "0.62"
EDIT_COLOUR = "#d62728"
BLOCK_COLOUR = "#ff7f0e"
COLOUR_MAP = "viridis"


@dataclass
class Trace:
    events: list[dict[str, Any]]
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, Any]:
        settings = self.header.get("settings")
        return settings if isinstance(settings, dict) else {}

    @property
    def prompts(self) -> list[str]:
        prompts = self.header.get("prompts")
        return [str(p) for p in prompts] if isinstance(prompts, list) else []

    @property
    def batch(self) -> int:
        return max(len(self.prompts), max((e["row"] for e in self.events), default=-1) + 1)

    @property
    def steps(self) -> int:
        return max((e["step"] for e in self.events), default=-1) + 1

    @property
    def gen_length(self) -> int:
        recorded = self.settings.get("gen_length")
        largest = max((e["position"] for e in self.events), default=-1) + 1
        return max(recorded, largest) if isinstance(recorded, int) else largest


def read_trace(path: Path) -> Trace:
    """A trace file; a line that is not a header or an event is an error naming the line."""
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give the file `llada sample --trace` wrote")
    if not path.is_file():
        raise UsageError(f"trace file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; is it a trace from `llada sample --trace`?") from None
    trace = Trace([])
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _record(line, f"{path} line {number}")
        if record.get("kind") == "header":
            trace.header = record
        else:
            trace.events.append(record)
    if not any(e["kind"] == "commit" for e in trace.events):
        raise UsageError(f"{path} has no commit events: nothing was decoded")
    return trace


def _record(line: str, where: str) -> dict[str, Any]:
    try:
        record = parse_record(line.encode("utf-8"))
    except ValueError as error:
        raise UsageError(f"{where}: {error}") from None
    if record.get("kind") == "header":
        return record
    record.setdefault("kind", "commit")
    record.setdefault("row", 0)
    counts = [record.get(key) for key in ("step", "position", "row")]
    if record["kind"] not in ("commit", "edit") or not all(_count(v) for v in counts):
        raise UsageError(f"{where}: not a trace event (kind commit or edit; step, position, row counts)")
    return record


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def pick_rows(trace: Trace, rows: Sequence[int] | None) -> list[int]:
    """0-based rows to draw: the given ones (checked), else all up to MAX_PANELS."""
    if rows is None:
        return list(range(min(trace.batch, MAX_PANELS)))
    wrong = [r + 1 for r in rows if not 0 <= r < trace.batch]
    if wrong:
        raise UsageError(
            f"{named('prompts')} {', '.join(map(str, wrong))}: the trace has prompts 1-{trace.batch}"
        )
    return list(dict.fromkeys(rows))


def sampler_text(settings: dict[str, Any]) -> str:
    """The sampler in words, from the settings a trace recorded."""
    if not settings:
        return "sampler settings not recorded in this trace"
    if settings.get("threshold") is None:
        parts = [f"exact sampler, {settings.get('remasking', 'low_confidence')} remasking"]
    else:
        parts = [f"confidence threshold {settings['threshold']:g}"]
        if settings.get("edit_threshold") is not None:
            parts.append(f"editing above {settings['edit_threshold']:g}")
    parts.append(str(settings.get("method", "?")))
    if settings.get("cache", "none") != "none":
        parts.append(f"{settings['cache']} cache")
    return ", ".join(parts)


def trace_title(trace: Trace, rows: Sequence[int]) -> str:
    settings = trace.settings
    planned = settings.get("steps")
    steps = f"{trace.steps} steps" + (f" (of {planned})" if planned and planned != trace.steps else "")
    block = settings.get("block_length") or "not recorded"
    run = trace.header.get("run")
    lines = [
        f"{f'{run}: ' if run else ''}decoding order, {sampler_text(settings)}",
        f"{steps}, gen length {trace.gen_length}, block length {block}",
    ]
    if len(rows) < trace.batch:
        lines.append(
            f"prompts {number_ranges([r + 1 for r in rows])} of {trace.batch} shown; --prompts picks others"
        )
    return "\n".join(lines)


def number_ranges(numbers: Sequence[int]) -> str:
    """'1-4,7' for [1, 2, 3, 4, 7]: the form `prompts` takes."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def row_grids(trace: Trace, row: int) -> tuple[Any, Any, list[tuple[int, int]]]:
    """(the step each position was unmasked at, from then on; where an EOS stands, masked elsewhere;
    the edits as (step, position))."""
    import numpy as np

    shape = (trace.gen_length, max(trace.steps, 1))
    unmasked = np.full(shape, np.nan)
    token = np.full(shape, -1, dtype=np.int64)
    edits = []
    for event in (e for e in trace.events if e["row"] == row):
        step, position = event["step"], event["position"]
        if event["kind"] == "commit":
            unmasked[position, step:] = step
        else:
            edits.append((step, position))
        token_id = event.get("token_id")
        token[position, step:] = token_id if _count(token_id) else -1
    recorded = trace.header.get("eos_ids")
    eos_ids = [i for i in recorded if _count(i)] if isinstance(recorded, list) else []
    eos = np.isin(token, eos_ids)
    return unmasked, np.ma.masked_where(~eos, np.ones(shape)), edits


def trace_figure(trace: Trace, rows: Sequence[int] | None = None) -> Any:
    """The heatmap Figure, not yet saved: one panel per prompt, EOS in grey, edits as red crosses."""
    chosen = pick_rows(trace, rows)
    height = max(1.8, trace.gen_length / 14)
    fig = new_figure(9, 1.2 + height * len(chosen), constrained=True)
    axes = fig.subplots(len(chosen), 1, squeeze=False, sharex=True)[:, 0]
    seen = {"eos": False, "edit": False}
    for axis, row in zip(axes, chosen, strict=True):
        image = _draw_panel(axis, trace, row, seen)
    axes[-1].set_xlabel("denoising step")
    fig.colorbar(image, ax=list(axes), label="step the position was unmasked")
    fig.suptitle(trace_title(trace, chosen), fontsize=10)
    handles = _key(seen, _block_length(trace) is not None)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    return fig


def _draw_panel(axis: Any, trace: Trace, row: int, seen: dict[str, bool]) -> Any:
    """One prompt's heatmap; returns the image the colorbar describes and notes in `seen` what it drew."""
    from matplotlib.colors import ListedColormap

    unmasked, eos, edits = row_grids(trace, row)
    style = dict(aspect="auto", interpolation="nearest", origin="upper")
    image = axis.imshow(unmasked, cmap=COLOUR_MAP, vmin=0, vmax=max(trace.steps - 1, 1), **style)
    if eos.count():
        axis.imshow(eos, cmap=ListedColormap([EOS_COLOUR]), vmin=0, vmax=1, **style)
        seen["eos"] = True
    if edits:
        steps, positions = zip(*edits, strict=True)
        axis.scatter(steps, positions, marker="x", s=30, linewidths=1.5, color=EDIT_COLOUR, label="edit")
        seen["edit"] = True
    _block_lines(axis, trace)
    axis.set_title(_panel_title(trace, row), fontsize=9, loc="left")
    axis.set_ylabel("answer position")
    return image


def _block_length(trace: Trace) -> int | None:
    block = trace.settings.get("block_length")
    return block if isinstance(block, int) and 0 < block < trace.gen_length else None


def _block_lines(axis: Any, trace: Trace) -> None:
    block = _block_length(trace)
    if block is not None:
        for edge in range(block, trace.gen_length, block):
            axis.axhline(edge - 0.5, color=BLOCK_COLOUR, linewidth=1.0, linestyle="dashed")


def _panel_title(trace: Trace, row: int) -> str:
    prompts = trace.prompts
    text = " ".join(prompts[row].split()) if row < len(prompts) else ""
    text = text if len(text) <= 70 else text[:69] + "…"
    return f"prompt {row + 1} of {trace.batch}" + (f": {text}" if text else "")


def _key(seen: dict[str, bool], blocks: bool) -> list[Any]:
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Artist] = [Patch(facecolor="white", edgecolor="0.5", label="still masked")]
    if seen["eos"]:
        handles.append(Patch(facecolor=EOS_COLOUR, label="EOS (end of answer)"))
    if seen["edit"]:
        handles.append(
            Line2D(
                [], [], marker="x", color=EDIT_COLOUR, linestyle="", label="edit (rewritten after unmasking)"
            )
        )
    if blocks:
        handles.append(
            Line2D([], [], color=BLOCK_COLOUR, linewidth=1.0, linestyle="dashed", label="block boundary")
        )
    return handles
