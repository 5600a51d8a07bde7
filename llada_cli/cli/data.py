"""`llada data fetch`: the builtin corpus, MiniMind from ModelScope, or a local .jsonl checked and copied."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..engine.data import fetch as fetching
from ..engine.data.formats import ConversationCounts, is_sft_row
from ..engine.data.lines import check_file, json_value, text_lines
from ..engine.data.sources import iter_jsonl_conversations, iter_jsonl_texts
from ..engine.errors import UsageError
from .common import cli_errors, counted, err, flag, globals_of, out, was_given
from .root import HelpCommand, HelpGroup

app = typer.Typer(cls=HelpGroup, help="Get training data.", no_args_is_help=True)
SOURCES = ("builtin", "minimind")  # the named sources; any other source is a local .jsonl file
LOCAL = "local"  # the data folder's subfolder that local files are copied into


def complete_source(incomplete: str) -> list[str]:
    """Shell completion: the named sources (the shell completes a file's path when none matches)."""
    return [name for name in SOURCES if name.startswith(incomplete)]


@app.command("fetch", cls=HelpCommand)
@cli_errors
def fetch(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="builtin, minimind, or a local .jsonl file to check and copy.",
            autocompletion=complete_source,
        ),
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder (default: <home>/data/<source>; a local file: <home>/data/local)."
        ),
    ] = None,
    pretrain_file: Annotated[
        str, typer.Option(help="minimind: pretraining file of the dataset.")
    ] = fetching.DEFAULT_MINIMIND_FILES[0],
    sft_file: Annotated[
        str, typer.Option(help="minimind: SFT file of the dataset.")
    ] = fetching.DEFAULT_MINIMIND_FILES[1],
    jsonl_field: Annotated[
        str, typer.Option("--jsonl-field", help="Text field when checking a local file.")
    ] = "text",
) -> None:
    """Download, generate or copy a data set into the registry's data folder; print its files' paths."""
    g = globals_of(ctx)
    applies = {"pretrain_file": source == "minimind", "sft_file": source == "minimind"}
    applies["jsonl_field"] = source not in SOURCES
    unused = [name for name, used in applies.items() if not used and was_given(ctx, name)]
    if unused:
        what = "a named source" if source in SOURCES else "a local file"
        names = " and ".join(flag(name) for name in unused)
        raise UsageError(
            f"{names} {'has' if len(unused) == 1 else 'have'} no effect on {what} ({source}): drop it"
        )
    if source == "builtin":
        # always seed 0: it is the corpus `--data builtin` trains on and `llada eval` asks about
        paths = fetching.write_builtin(out_dir or g.registry.data_dir / "builtin")
    elif source == "minimind":
        paths = fetching.fetch_minimind(
            out_dir or g.registry.data_dir / "minimind", (pretrain_file, sft_file)
        )
    else:
        path = Path(source)
        _check_local(path, jsonl_field)
        paths = [fetching.copy_local(path, out_dir or g.registry.data_dir / LOCAL)]
    for path in paths:
        out.print(str(path), highlight=False)


def _check_local(path: Path, field: str) -> None:
    """Validate every line (conversations or texts) before anything is copied."""
    if path.suffix != ".jsonl":
        raise UsageError(f"{path}: expected builtin, minimind or a .jsonl file")
    check_file(path, "data file")
    if _holds_conversations(path):
        counts = ConversationCounts()
        for _ in iter_jsonl_conversations(path, counts):
            pass
        skipped = counts.line()
        report = f"{counted(counts.kept, 'conversation')}, " + (skipped or "every line valid")
    else:
        documents = sum(1 for _ in iter_jsonl_texts(path, field))
        report = f"{counted(documents, 'document')}, every line valid"
    err.print(f"{path}: {report}", highlight=False)


def _holds_conversations(path: Path) -> bool:
    """Whether the first non-blank line looks like an SFT row (the readers then check every line)."""
    try:
        lineno, first = next(((n, line) for n, line in text_lines(path) if line.strip()), (0, ""))
        row = json_value(first, f"{path} line {lineno}") if first else None
    except UsageError:
        return False  # the text reader reports the problem with its usual message
    return isinstance(row, dict) and is_sft_row(row)
