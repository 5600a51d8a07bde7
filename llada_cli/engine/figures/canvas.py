"""What every figure shares: a matplotlib Figure without pyplot's global state, where it is written
(a file, a folder, or the current folder by default) and an atomic save."""

from __future__ import annotations

import os
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


def figure_path(out: str | Path | None, default_name: str) -> Path:
    """Where a figure goes: `out` (a file with a suffix matplotlib writes, or a folder, one that
    exists or a path ending in a separator, that gets `default_name`), else `default_name` in the
    current folder. Checked before any work; missing folders are made when the figure is saved."""
    if out is None:
        return Path.cwd() / default_name
    text = str(out)  # a Path has lost the separator at the end that marks a folder to make
    if text.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)) or Path(text).is_dir():
        return Path(text) / default_name
    path = Path(text)
    suffix = path.suffix.lstrip(".").lower()
    if not suffix:
        raise UsageError(
            f"{named('out')} {path}: give a file name ending in one of {supported()}, "
            f"or a folder (end it with {os.sep} to make one)"
        )
    if suffix not in FIGURE_SUFFIXES:
        raise UsageError(f"{named('out')} {path}: cannot write .{suffix} figures; use one of {supported()}")
    return path


def save_figure(fig: Any, out: Path) -> Path:
    """Write `fig` to `out` in one step (a temporary file beside it, then a rename; missing folders
    made), trimmed to its contents so a legend outside the axes is kept."""
    suffix = out.suffix.lstrip(".").lower() or "png"
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=suffix, dpi=DPI, bbox_inches="tight")
    except OSError as error:
        file = next((p for p in reversed(out.parents) if p.exists() and not p.is_dir()), None)
        problem = f"{file} is a file, not a folder" if file else error.strerror or error
        raise LladaError(f"cannot write {out}: {problem}") from None
    return out


def safe_name_part(text: str, limit: int = 80) -> str:
    """`text` usable in a file name: path separators and spaces become '-', at most `limit` chars."""
    cleaned = "".join(c if c.isalnum() or c in "._+-@" else "-" for c in text).strip("-.")
    return cleaned[:limit] or "figure"
