"""`llada runs list|show|rm`: the checkpoint registry."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.cells import cell_len
from rich.table import Table

from ..engine.config import Kind
from ..engine.errors import LladaError, UsageError
from ..engine.run_options import RunOptions, TokenizerOptions
from ..engine.runs.folder import Run
from ..engine.runs.locks import shown_status
from ..engine.runs.record import RunInfo
from .common import cli_errors, complete_run_name, counted, err, globals_of, out, print_json
from .options import Given, Group, with_configs
from .progress import duration, waiting
from .root import HelpCommand, HelpGroup, LaterSetupCommand
from .runs_merge import merge

if TYPE_CHECKING:
    from rich.console import JustifyMethod

app = typer.Typer(cls=HelpGroup, help="List, inspect and remove runs.", no_args_is_help=True)

RunName = Annotated[
    str, typer.Argument(help="Run name (or name@step, or a run folder).", autocompletion=complete_run_name)
]

JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


def summary(run: Run) -> dict[str, Any]:
    info = run.info()
    train = info.train
    return {
        "name": run.name,
        "kind": info.kind,
        "stage": info.stage,
        "parent": info.parent,
        "status": shown_status(run.path, info.status),
        "step": info.step,
        "total_steps": info.total_steps,
        "parameters": info.parameters,
        "learning_rate": train.learning_rate if train else None,
        "batch_size": train.batch_size * train.grad_accum if train else None,
        "tokens": info.tokens,
        # training time (the waits between a stop and its resume left out); older runs: the span
        "seconds": info.train_seconds if info.train_seconds is not None else _wall_seconds(info),
        "span_seconds": _wall_seconds(info),
        "best_val_loss": (info.best or {}).get("val_loss"),
        "loss_kind": LOSS_KIND[info.kind],
        "checkpoints": run.checkpoint_steps(),
        "created": info.created,
        "path": str(run.path),
    }


LOSS_KIND = {"ar": "cross entropy", "diffusion": "ELBO bound", "?": "?"}  # both in nats per token


def _wall_seconds(info: RunInfo) -> float | None:
    """From the run's creation to its end, waits included; None while it has not ended."""
    if not info.finished:
        return None
    start, end = (datetime.fromisoformat(stamp) for stamp in (info.created, info.finished))
    return (end - start).total_seconds()


def _summary_or_corrupt(run: Run) -> dict[str, Any]:
    """One unreadable run.json must not hide the other runs."""
    try:
        return summary(run)
    except LladaError:
        return {"name": run.name, "kind": "?", "stage": "?", "status": "corrupt", "path": str(run.path)}


LIST_COLUMNS = ("name", "kind", "stage", "status", "step", "lr", "batch", "tokens", "time", "best val")
TEXT_COLUMNS = ("name", "kind", "stage", "status")
# a narrow terminal leaves these out, first to last; name, kind, stage, status and step always stay
LEFT_OUT_FIRST = ("batch", "lr", "tokens", "time", "best val")
LIST_CAPTION = "best val: nats/token (ar: cross entropy; dlm, diffusion: ELBO bound)"


@app.command("list", cls=LaterSetupCommand)  # loads no torch, so no threads to set
@cli_errors
def list_runs(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every run of the registry (piped: tab-separated lines under a header line)."""
    registry = globals_of(ctx).registry
    registry.recover_all()  # what stopped overwrites left: back in place, or listed under a new name
    rows = [_summary_or_corrupt(run) for run in registry.runs()]
    for name in registry.incomplete_names():
        err.print(
            f"run folder '{name}' has no run.json (a start stopped before writing it): "
            f"`llada runs rm {name}` removes it, starting the run again replaces it",
            highlight=False,
        )
    if as_json:
        print_json(rows)
        return
    if not rows:
        err.print(f"no runs yet in {globals_of(ctx).registry.runs_dir}", highlight=False)
        return
    cells = [_cells(row) for row in rows]
    if not out.is_terminal:  # for grep, cut and awk -F'\t': every column, every value whole
        for line in [tuple(c.replace(" ", "_") for c in LIST_COLUMNS), *cells]:
            sys.stdout.write("\t".join(line) + "\n")
        return
    shown = _fitting(cells, out.width)
    table = Table(box=None, pad_edge=False, header_style="bold underline")
    for column in shown:
        justify: JustifyMethod = "left" if column in TEXT_COLUMNS else "right"
        # values are never cut: columns are left out instead, and a name too long for the terminal wraps
        table.add_column(column, justify=justify, no_wrap=column != "name", overflow="fold")
    for row_cells in cells:
        table.add_row(*(row_cells[LIST_COLUMNS.index(column)] for column in shown))
    out.print(table, highlight=False)
    left_out = [column for column in LIST_COLUMNS if column not in shown]
    notes = [LIST_CAPTION] if "best val" in shown else []
    notes += [f"left out at this width: {', '.join(left_out)} (--json has them)"] if left_out else []
    for note in notes:
        out.print(note, style="dim", soft_wrap=False, markup=False, highlight=False)


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    """One run's values for LIST_COLUMNS, as the table and the tab-separated lines show them."""
    if row["status"] == "corrupt":
        return (row["name"], "?", "?", "corrupt", *["-"] * 6)
    best = row["best_val_loss"]
    return (
        row["name"],
        "dlm" if row["kind"] == "diffusion" else row["kind"],
        row["stage"],
        row["status"],
        f"{row['step']}/{row['total_steps'] or '?'}",
        f"{row['learning_rate']:g}" if row["learning_rate"] else "-",
        str(row["batch_size"] or "-"),
        _count(row["tokens"]),
        duration(row["seconds"]) if row["seconds"] is not None else "-",
        f"{best:.3f}" if best is not None else "-",
    )


def _fitting(cells: list[tuple[str, ...]], width: int) -> list[str]:
    """The columns that fit `width` with every value whole, leaving out LEFT_OUT_FIRST in order."""
    widths = {
        column: max(cell_len(text) for text in (column, *(row[i] for row in cells)))
        for i, column in enumerate(LIST_COLUMNS)
    }
    shown = list(LIST_COLUMNS)
    for column in LEFT_OUT_FIRST:
        if sum(widths[c] for c in shown) + 2 * (len(shown) - 1) <= width:  # two spaces between columns
            break
        shown.remove(column)
    return shown


def _count(number: int | None) -> str:
    if not number:
        return "-"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if number >= scale:
            return f"{number / scale:.1f}{suffix}"
    return str(number)


@app.command("show", cls=LaterSetupCommand)  # loads no torch
@cli_errors
def show(ctx: typer.Context, name: RunName, as_json: JsonFlag = False) -> None:
    """A run's configuration, status and checkpoints."""
    run, step = globals_of(ctx).registry.resolve(name)
    if step is not None:
        run.resolve_step(step)  # name@step: a checkpoint it has, else the steps it has
    info = run.info().to_json() | {"checkpoints": run.checkpoint_steps(), "path": str(run.path)}
    info["evals"] = run.eval_results()
    info["status"] = shown_status(run.path, info["status"])
    if as_json:
        print_json(info)
        return
    about = summary(run)
    table = Table(box=box.SIMPLE, show_header=False, title=f"run {run.name}", title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # paths and commands wrap, never cut
    best = (
        f"{about['best_val_loss']:.4f} nats/token ({about['loss_kind']})" if about["best_val_loss"] else "-"
    )
    for label, value in (
        (
            "kind",
            f"{about['kind']} {about['stage']}" + (f" from {about['parent']}" if about["parent"] else ""),
        ),
        ("status", f"{about['status']} at step {about['step']}/{about['total_steps'] or '?'}"),
        ("best val", best),
        ("parameters", _count(about["parameters"])),
        ("tokens seen", _count(about["tokens"])),
        ("training time", duration(about["seconds"]) if about["seconds"] is not None else "-"),
        ("created", about["created"]),
        ("finished", info.get("finished") or "-"),
        ("checkpoints", ", ".join(map(str, about["checkpoints"])) or "-"),
        ("path", about["path"]),
    ):
        table.add_row(label, value)
    if info.get("merged_from"):  # a merged run: the checkpoints its weights average
        table.add_row(
            "merged from", ", ".join(f"{s.get('run')}@{s.get('step')}" for s in info["merged_from"])
        )
    for section in ("model", "train", "data", "objective"):
        if isinstance(info.get(section), dict):
            table.add_row(section, _settings(info[section]))
    table.add_row("command", " ".join(info.get("command") or []) or "-")
    for evaluation in info["evals"]:  # lm-eval results saved by `llada eval RUN --tasks`
        table.add_row(f"lm-eval {evaluation.get('created', '')}", _eval_summary(evaluation))
    out.print(table)


def _eval_summary(evaluation: dict[str, Any]) -> str:
    """'arc_easy acc 0.52 · hellaswag acc_norm 0.31' (stderr left out), from a saved lm-eval report."""
    shown = []
    for task, metrics in (evaluation.get("results") or {}).items():
        for key, value in metrics.items():
            if isinstance(value, float) and "stderr" not in key:
                shown.append(f"{task} {key.split(',')[0]} {value:.4g}")
    return " · ".join(shown) or "-"


def _settings(values: dict[str, Any]) -> str:
    """'hidden_size 64 · learning_rate 0.003 · ...' with short numbers."""
    shown = [f"{key} {_value(value)}" for key, value in values.items() if value is not None]
    return " · ".join(shown)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_value(v) for v in value) or "-"
    return str(value)


@app.command("rm", cls=HelpCommand)
@cli_errors
def remove(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Runs to delete.", autocompletion=complete_run_name)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete runs (asks first unless --yes); a run being trained is refused."""
    registry = globals_of(ctx).registry
    runs = [registry.removable(name) for name in names]
    for run in runs:
        children = [child for child in registry.children(run.name) if child not in names]
        if children:
            err.print(
                f"warning: run '{run.name}' is the parent of {', '.join(children)} "
                "(their run.json names it; they keep their own weights)",
                highlight=False,
            )
    if not yes and not typer.confirm(
        f"Delete {counted(len(runs), 'run')}: {', '.join(r.name for r in runs)}?"
    ):
        for run in runs:
            err.print(f"kept run '{run.name}'", highlight=False)
        raise typer.Exit(1)
    for run in runs:
        registry.remove(run.name)
        err.print(f"removed {run.name}", highlight=False)


@app.command("import", cls=HelpCommand)
@cli_errors
@with_configs(
    tokenizer=Group(
        TokenizerOptions,
        "Options",
        help={"tokenizer": "The model's tokenizer.json (default: a transformers folder's own)."},
    ),
    replace=Group(RunOptions, "Options", skip=frozenset({"run_name", "resume", "device", "devices"})),
)
def import_checkpoint(
    ctx: typer.Context,
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="A .pt, .pth or .safetensors state dict (MiniMind, Nano-LLaDA), or a transformers "
            "folder (config.json, safetensors, tokenizer.json; e.g. from llada export)."
        ),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the new run.")],
    kind: Annotated[
        Kind | None,
        typer.Option(
            help="ar (causal) or diffusion (bidirectional); default: Nano-LLaDA files diffusion, else ar."
        ),
    ] = None,
    num_attention_heads: Annotated[
        int | None,
        typer.Option(min=1, help="Query heads, when the checkpoint does not say (no q-norm, no args)."),
    ] = None,
    *,
    tokenizer: Given[TokenizerOptions],
    replace: Given[RunOptions],
) -> None:
    """Register an external checkpoint as a run (architecture read off tensor names and shapes)."""
    # loads torch: here, not at the top, so that --help and shell completion stay quick
    from ..engine.interchange.hf_format import is_hf_folder
    from ..engine.interchange.imported_runs import register_import

    tokenizer_path = tokenizer.build().path
    if tokenizer_path is None and not is_hf_folder(checkpoint):
        raise UsageError("runs import needs the model's tokenizer: --tokenizer FILE or --tokenizer-dir DIR")
    g = globals_of(ctx)
    with waiting(f"importing {checkpoint.name} ({_size_mb(checkpoint):,.1f} MB)", g.verbosity):
        run, report = register_import(
            g.registry,
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


def _size_mb(path: Path) -> float:
    files = path.rglob("*") if path.is_dir() else [path] if path.exists() else []
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


app.command("merge", cls=HelpCommand)(merge)
