"""What every figure shares: a matplotlib Figure without pyplot's global state, where it is written
(a file, a folder, or the current folder by default) and an atomic save."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..errors import LladaError, UsageError, named

# The formats matplotlib writes without extra programs (pgf needs LaTeX; raw/rgba are not images).
FIGURE_SUFFIXES = ("png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp")
DPI = 110
RUN_COLOURS = [f"C{i}" for i in range(10)]  # matplotlib's default cycle: one colour per run


def new_figure(width: float, height: float, constrained: bool = False) -> Any:
    """A Figure with an Agg canvas (so it can be drawn and measured before it is saved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def supported() -> str:
    return ", ".join(f".{suffix}" for suffix in FIGURE_SUFFIXES)


def figure_path(out: Path | None, default_name: str) -> Path:
    """Where a figure goes: `out` (a file with a suffix matplotlib writes, or an existing folder that
    gets `default_name`), else `default_name` in the current folder. Checked before any work."""
    if out is None:
        return Path.cwd() / default_name
    if out.is_dir():
        return out / default_name
    suffix = out.suffix.lstrip(".").lower()
    if not suffix:
        raise UsageError(
            f"{named('out')} {out}: give a file name ending in one of {supported()}, or a folder"
        )
    if suffix not in FIGURE_SUFFIXES:
        raise UsageError(f"{named('out')} {out}: cannot write .{suffix} figures; use one of {supported()}")
    return out


def save_figure(fig: Any, out: Path) -> Path:
    """Write `fig` to `out` in one step (a temporary file beside it, then a rename), trimmed to its
    contents so a legend outside the axes is kept."""
    suffix = out.suffix.lstrip(".").lower() or "png"
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=suffix, dpi=DPI, bbox_inches="tight")
    except OSError as error:
        raise LladaError(f"cannot write {out}: {error.strerror or error}") from None
    return out


def safe_name_part(text: str, limit: int = 80) -> str:
    """`text` usable in a file name: path separators and spaces become '-', at most `limit` chars."""
    cleaned = "".join(c if c.isalnum() or c in "._+-@" else "-" for c in text).strip("-.")
    return cleaned[:limit] or "figure"


JSON_TYPES = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number"}


def parse_record(raw: bytes) -> dict[str, Any]:
    """One JSON-lines record (metrics, a sampling trace); ValueError says what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{JSON_TYPES.get(type(record), 'null')}, not a JSON object")
    return record
