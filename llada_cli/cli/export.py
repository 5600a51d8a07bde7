"""`llada export RUN OUT/`: a run as a Hugging Face transformers folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from ..engine.errors import UsageError
from ..engine.run_options import WeightsOptions
from .common import cli_errors, complete_run_name, err, globals_of, out, unusable
from .options import Given, with_configs
from .progress import waiting
from .sample import WEIGHTS_GROUP

FORMAT = Literal["hf"]  # the only one so far


@cli_errors
@with_configs(weights=WEIGHTS_GROUP)
def export(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run name or name@step.", autocompletion=complete_run_name)],
    folder: Annotated[Path, typer.Argument(help="Folder to write (new, or empty).")],
    format: Annotated[FORMAT, typer.Option("--format", help="hf: a transformers folder.")] = "hf",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier export in FOLDER.")
    ] = False,
    *,
    weights: Given[WeightsOptions],
) -> None:
    """Export a run: an AR run loads with AutoModelForCausalLM.from_pretrained(FOLDER); a diffusion
    run's folder (with a model card) goes back into llada with `llada runs import FOLDER`."""
    # loads torch: here, not at the top, so that --help and shell completion stay quick
    from ..engine.interchange.hf_format import export_hf
    from ..engine.runs.loaded import load_run

    problem = unusable(folder)
    if problem is not None:  # e.g. a symlink loop: before the run is loaded
        raise UsageError(f"{folder}: {problem}; choose another folder")
    g = globals_of(ctx)
    found, step = g.registry.resolve(run)
    with waiting(f"exporting {found.name} to {folder.name or folder}", g.verbosity):
        loaded = load_run(found, step, ema=weights.build().ema)
        export_hf(loaded, folder, overwrite)
    err.print(
        f"exported {found.name}@{loaded.step} ({loaded.kind}) as a transformers folder", highlight=False
    )
    out.print(str(folder), highlight=False)
