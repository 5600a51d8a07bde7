"""`llada runs list|show|rm`: the checkpoint registry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from ..engine.errors import LladaError, UsageError
from ..engine.imported_runs import register_import
from ..engine.registry import Run
from ..engine.runinfo import KINDS
from ..engine.stages import RunOptions
from ..engine.tokenizer import TokenizerOptions
from .common import cli_errors, complete_run_name, err, globals_of, out, print_json
from .options import Given, Group, with_configs

app = typer.Typer(help="List, inspect and remove runs.", no_args_is_help=True)

RunName = Annotated[
    str, typer.Argument(help="Run name (or name@step, or a run folder).", autocompletion=complete_run_name)
]


KIND = Literal.__getitem__(KINDS)
JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


def summary(run: Run) -> dict[str, Any]:
    info = run.info()
    return {
        "name": run.name,
        "kind": info.kind,
        "stage": info.stage,
        "parent": info.parent,
        "status": info.status,
        "step": info.step,
        "total_steps": info.total_steps,
        "parameters": info.parameters,
        "best_val_loss": (info.best or {}).get("val_loss"),
        "checkpoints": run.checkpoint_steps(),
        "created": info.created,
        "path": str(run.path),
    }


def _summary_or_corrupt(run: Run) -> dict[str, Any]:
    """One unreadable run.json must not hide the other runs."""
    try:
        return summary(run)
    except LladaError:
        return {
            "name": run.name,
            "kind": "?",
            "stage": "?",
            "parent": None,
            "status": "corrupt",
            "step": 0,
            "total_steps": None,
            "parameters": None,
            "best_val_loss": None,
            "path": str(run.path),
        }


@app.command("list")
@cli_errors
def list_runs(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every run of the registry."""
    rows = [_summary_or_corrupt(run) for run in globals_of(ctx).registry.runs()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        err.print(f"no runs yet in {globals_of(ctx).registry.runs_dir}", highlight=False)
        return
    table = Table("name", "kind", "stage", "parent", "status", "step", "params", "best val")
    for row in rows:
        best = f"{row['best_val_loss']:.4f}" if row["best_val_loss"] is not None else "-"
        params = f"{row['parameters'] / 1e6:.2f}M" if row["parameters"] else "-"
        table.add_row(
            row["name"],
            row["kind"],
            row["stage"],
            row["parent"] or "-",
            row["status"],
            f"{row['step']}/{row['total_steps'] or '?'}",
            params,
            best,
        )
    out.print(table)


@app.command("show")
@cli_errors
def show(ctx: typer.Context, name: RunName, as_json: JsonFlag = False) -> None:
    """A run's configuration, status and checkpoints."""
    run, _ = globals_of(ctx).registry.resolve(name)
    info = run.info().to_json() | {"checkpoints": run.checkpoint_steps(), "path": str(run.path)}
    if as_json:
        print_json(info)
        return
    for key, value in summary(run).items():
        out.print(f"[bold]{key:>12}[/]  {value}", highlight=False)
    out.print(f"[bold]{'model':>12}[/]  {info['model']}", highlight=False)
    out.print(f"[bold]{'command':>12}[/]  {' '.join(info.get('command') or [])}", highlight=False)


@app.command("rm")
@cli_errors
def remove(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Runs to delete.", autocompletion=complete_run_name)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete runs (asks first unless --yes)."""
    registry = globals_of(ctx).registry
    runs = [registry.existing(name) for name in names]
    if not yes and not typer.confirm(f"Delete {len(runs)} run(s): {', '.join(r.name for r in runs)}?"):
        raise typer.Exit(1)
    for run in runs:
        registry.remove(run.name)
        err.print(f"removed {run.name}", highlight=False)


@app.command("import")
@cli_errors
@with_configs(
    tokenizer=Group(TokenizerOptions, "Options"),
    replace=Group(RunOptions, "Options", skip=frozenset({"run_name", "resume", "device"})),
)
def import_checkpoint(
    ctx: typer.Context,
    checkpoint: Annotated[
        Path, typer.Argument(help="A .pt, .pth or .safetensors state dict (MiniMind, Nano-LLaDA).")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the new run.")],
    kind: Annotated[
        KIND | None,
        typer.Option(
            help="ar (causal) or diffusion (bidirectional); default: Nano-LLaDA files diffusion, else ar."
        ),
    ] = None,
    num_attention_heads: Annotated[
        int | None, typer.Option(help="Query heads, when the checkpoint does not say (no q-norm, no args).")
    ] = None,
    *,
    tokenizer: Given[TokenizerOptions],
    replace: Given[RunOptions],
) -> None:
    """Register an external checkpoint as a run (architecture read off tensor names and shapes)."""
    tokenizer_path = tokenizer.build().path
    if tokenizer_path is None:
        raise UsageError("runs import needs the model's tokenizer: --tokenizer FILE or --tokenizer-dir DIR")
    run, report = register_import(
        globals_of(ctx).registry,
        checkpoint,
        name,
        tokenizer_path,
        kind,  # None: as the file's layout says
        overwrite=replace.values.get("overwrite", False),
        num_attention_heads=num_attention_heads,
        command=["llada", *sys.argv[1:]],
    )
    err.print(report.summary(), highlight=False)
    out.print(str(run.path), highlight=False)
