"""What every command shares: global settings, one-line errors, consoles, run-name completion."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console, ConsoleDimensions

from ..engine.errors import LladaError, UsageError
from ..engine.runs.folder import Run
from ..engine.runs.registry import Registry, default_home

# A terminal narrower than this (or COLUMNS=0, where rich would draw nothing) is drawn this wide.
MIN_WIDTH = 40


class Terminal(Console):
    """rich's Console, never narrower than MIN_WIDTH."""

    @property
    def size(self) -> ConsoleDimensions:
        width, height = super().size
        return ConsoleDimensions(max(width, MIN_WIDTH), height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


# Results go to stdout; logs, progress and errors to stderr, so `--json | jq` always works.
out = Terminal(soft_wrap=True)
err = Terminal(stderr=True, soft_wrap=True)


def tolerant_streams() -> None:
    """stdout and stderr write what their encoding cannot (PYTHONIOENCODING=ascii, a C locale) as
    '?' or an escape, instead of failing on it: called as the command line starts (cli/root.py)."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def _writes_unicode() -> bool:
    """Whether stdout's encoding writes every character (else JSON escapes them)."""
    try:
        "\u2026\U0001f600".encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Globals:
    home: Path
    device: str
    seed: int
    verbosity: int  # -1 quiet, 0 normal, 1 verbose

    @property
    def registry(self) -> Registry:
        return Registry(self.home)


def was_given(ctx: typer.Context, name: str) -> bool:
    """Whether the parameter `name` came from the command line, an environment variable or a
    config file, not its default (typer's own click: its source is compared by name)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def globals_of(ctx: typer.Context) -> Globals:
    root = ctx.find_root()
    if isinstance(root.obj, Globals):
        return root.obj
    # shell completion parses the line without running the callback: --home (or LLADA_HOME) as given
    home = Path(root.params["home"]).expanduser() if root.params.get("home") else default_home()
    return Globals(home, os.environ.get("LLADA_DEVICE", "auto"), 0, 0)


def check_home(home: Path, label: str = "--home") -> None:
    """A registry root must be a folder, or nothing yet (it is created); `label` names where it was
    given. A symlink loop does not "exist": it would read as a registry without runs."""
    if home.exists() and not home.is_dir():
        raise UsageError(f"{label} {home} is a file; give a folder (it is created if missing)")
    problem = unusable(home)
    if problem is not None:
        raise UsageError(f"{label} {home}: {problem}")


def unusable(path: Path) -> str | None:
    """Why `path` can be neither used nor created (a symlink loop, a file where a folder would
    be), in the system's words; None for a path that exists or can be made."""
    try:
        path.stat()
    except FileNotFoundError:
        return None
    except OSError as error:
        return error.strerror or type(error).__name__
    return None


def flag(name: str) -> str:
    """The flag of an option field: `--` and the name with dashes; one letter is a short flag."""
    return f"-{name}" if len(name) == 1 else "--" + name.replace("_", "-")


def with_flags(text: str) -> str:
    """Engine text (help, errors) with every named option shown as its flag."""
    return LladaError(text).render(flag)


def cli_errors(func: F | None = None, *, flags: dict[str, str] | None = None) -> Any:
    """Turn engine errors into one line on stderr (options shown as flags) and the exit code.
    `flags`: a command's own flag for a field where it differs from the field's name."""
    if func is None:
        return functools.partial(cli_errors, flags=flags)
    own = flags or {}

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LladaError as error:
            typer.echo(f"error: {error.render(lambda name: own.get(name) or flag(name))}", err=True)
            raise typer.Exit(error.exit_code) from None
        except OSError as error:  # a read-only --home, a full disk, an unwritable --out
            where = f": {error.filename}" if error.filename else ""
            typer.echo(f"error: {error.strerror or error}{where}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:  # a training command says how to resume before this (run_training)
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as error:  # the last resort: a bug of ours, still one line unless -v
            ctx = next((a for a in (*args, *kwargs.values()) if hasattr(a, "find_root")), None)
            # typer.Exit, Abort and click's usage errors (they have an exit code) are not bugs
            if ctx is None or hasattr(error, "exit_code"):
                raise
            settings = ctx.find_root().obj
            if not isinstance(settings, Globals) or settings.verbosity > 0:
                raise
            message = " ".join(str(error).split())
            typer.echo(
                f"error: internal error in {ctx.command_path}: {type(error).__name__}: {message}; "
                "rerun with -v for the traceback and report it",
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def counted(number: float, noun: str, plural: str | None = None, spec: str = "") -> str:
    """'1 thread', '2 threads', '1.5 epochs': a count as `spec` formats it, its noun in the right number."""
    shown = format(number, spec)
    return f"{shown} {noun}" if shown == "1" else f"{shown} {plural or noun + 's'}"


def print_json(data: Any) -> None:
    """One JSON document on stdout; NaN/inf (a diverged loss) become null so it stays valid JSON."""
    ascii_only = not _writes_unicode()
    sys.stdout.write(json.dumps(_finite(data), ensure_ascii=ascii_only, indent=2, allow_nan=False) + "\n")


def print_json_line(data: Any) -> None:
    sys.stdout.write(json.dumps(_finite(data), ensure_ascii=not _writes_unicode(), allow_nan=False) + "\n")


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data


def complete_run_name(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: names of the runs in the registry."""
    try:
        names = globals_of(ctx).registry.names()
    except OSError:
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_run_of(kind: str) -> Callable[[typer.Context, str], list[str]]:
    """Shell completion: names of the registry's runs of one kind (ar or diffusion)."""

    def complete(ctx: typer.Context, incomplete: str) -> list[str]:
        runs = globals_of(ctx).registry.runs_dir
        return [name for name in complete_run_name(ctx, incomplete) if _kind(Run(runs / name)) == kind]

    return complete


def _kind(run: Run) -> str | None:
    try:
        return run.info().kind
    except (LladaError, OSError):  # an unreadable run.json: offered for no kind
        return None
