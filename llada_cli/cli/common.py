"""What every command shares: global settings, one-line errors, consoles, run-name completion."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from ..engine.errors import LladaError
from ..engine.registry import Registry, default_home

# Results go to stdout; logs, progress and errors to stderr, so `--json | jq` always works.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

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


def globals_of(ctx: typer.Context) -> Globals:
    root = ctx.find_root()
    if isinstance(root.obj, Globals):
        return root.obj
    return Globals(default_home(), os.environ.get("LLADA_DEVICE", "auto"), 0, 0)


def cli_errors(func: F) -> F:
    """Turn engine errors into one line on stderr and the exit code (2 usage, 1 runtime)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LladaError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            typer.echo(
                "interrupted; a training run continues with --resume from its last checkpoint", err=True
            )
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def complete_run_name(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: names of the runs in the registry."""
    try:
        names = globals_of(ctx).registry.names()
    except OSError:
        return []
    return [name for name in names if name.startswith(incomplete)]
