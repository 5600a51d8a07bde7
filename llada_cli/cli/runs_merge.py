"""`llada runs merge SOURCES... --name NEW`: a run whose weights are the mean of checkpoints."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..engine.run_options import RunOptions
from .common import cli_errors, complete_run_name, err, globals_of, out
from .options import Given, Group, with_configs
from .progress import waiting


@cli_errors
@with_configs(
    replace=Group(RunOptions, "Options", skip=frozenset({"run_name", "resume", "device", "devices"})),
)
def merge(
    ctx: typer.Context,
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Checkpoints to average: RUN@STEP, or RUN for its latest (one RUN with --top-k-val).",
            autocompletion=complete_run_name,
        ),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the new run.")],
    top_k_val: Annotated[
        int | None,
        typer.Option(
            "--top-k-val",
            metavar="K",
            min=1,
            help="Average the K checkpoints of one run with the lowest validation loss (Nano-LLaDA's "
            "top-k merge).",
        ),
    ] = None,
    *,
    replace: Given[RunOptions],
) -> None:
    """Average checkpoints of one kind, stage, shape and tokenizer into a new run, which samples,
    evals, exports and fine-tunes like any other; `runs show` names its sources."""
    # loads torch: here, not at the top, so that --help and shell completion stay quick
    from ..engine.runs.merge import merge as merge_runs
    from ..engine.runs.merge import pick_sources

    g = globals_of(ctx)
    picked = pick_sources(g.registry, sources, top_k_val)
    labels = ", ".join(source.label for source in picked)
    with waiting(f"averaging {labels}", g.verbosity):
        run = merge_runs(
            g.registry,
            picked,
            name,
            overwrite=replace.values.get("overwrite", False),
            command=["llada", *sys.argv[1:]],
        )
    err.print(f"merged {labels} into run '{run.name}'", highlight=False)
    out.print(str(run.path), highlight=False)
