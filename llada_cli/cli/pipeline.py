"""`llada pipeline EXPERIMENT.toml`: one file runs the whole experiment, step by step.

The file has one table per step, holding that command's options under their flag names, and
shared values at the top: the global options (home, device, seed) and options every step that
takes them receives (a model shape, a batch size). Each step is exactly a `llada ...` command
line; `--dry-run` prints them for a shell script.
"""

from __future__ import annotations

import shlex
from itertools import product
from pathlib import Path
from typing import Annotated, Any

import typer

from ..engine.errors import UsageError
from ..engine.runs.registry import Registry
from .commandline import find_param, load_tables, subcommand, table_words, unknown_table
from .common import cli_errors, err, globals_of, out
from .experiment import Decision, PipelineState, Step, decide, run_inputs

# (table, stage, command): the steps in the order they run
STEPS = (
    ("data", "data", ("data", "fetch")),
    ("pretrain.ar", "pretrain", ("pretrain", "ar")),
    ("pretrain.diffusion", "pretrain", ("pretrain", "diffusion")),
    ("sft.ar", "sft", ("sft",)),
    ("sft.diffusion", "sft", ("sft",)),
    ("eval", "eval", ("eval",)),
    ("sample", "sample", ("sample",)),
    ("compare", "compare", ("compare",)),
    ("plot", "plot", ("plot",)),
)
STAGES = ("all", *dict.fromkeys(stage for _, stage, _ in STEPS))
DECIDED_BY_PIPELINE = ("resume", "overwrite")  # the pipeline adds these from the run's state


@cli_errors
def pipeline(
    ctx: typer.Context,
    experiment: Annotated[Path, typer.Argument(help="Experiment file: TOML, or YAML (.yaml, .yml).")],
    stage: Annotated[
        str,
        typer.Option(help=f"Run one stage only: {', '.join(STAGES)}.", case_sensitive=False),
    ] = "all",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print each step's command line; run and write nothing.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Train again a run whose settings or inputs changed.")
    ] = False,
) -> None:
    """Run an experiment file: data, pretraining, SFT, eval, sampling, compare and plot.

    A step whose run completed with the same settings is skipped; an interrupted one resumes;
    a changed one is refused with the differences unless --overwrite.
    """
    if stage not in STAGES:
        raise UsageError(f"unknown stage '{stage}'; choose one of {', '.join(STAGES)}")
    root = ctx.find_root()
    tables = load_tables(experiment)
    global_words, home = _global_words(root, tables, str(experiment))
    registry = Registry(home)
    steps = [s for s in experiment_steps(root.command, tables, str(experiment)) if stage in ("all", s.stage)]
    if not steps:
        raise UsageError(
            f"{experiment}: no step of stage '{stage}' (tables: {', '.join(t for t, *_ in STEPS)})"
        )
    state = PipelineState.of(registry, experiment)
    for step in steps:
        inputs = run_inputs(registry, step) if registry.runs_dir.is_dir() else {}
        decision = decide(registry, state, step, inputs, overwrite)
        line = ["llada", *global_words, *step.words, *decision.extra_words()]
        if dry_run:
            _print_planned(step, decision, line)
            continue
        if decision.action == "skip":
            err.print(f"{step.name}: {decision.reason}; skipped", highlight=False)
            continue
        err.print(f"{step.name}: {shlex.join(line)}", highlight=False, style="bold")
        state.record(step, inputs, done=False)
        code = _invoke(root.command, line[1:])
        if code:
            err.print(f"pipeline stopped at step {step.name} (exit {code})", highlight=False)
            raise typer.Exit(code)
        state.record(step, run_inputs(registry, step), done=True)


def experiment_steps(root: Any, tables: dict[str, Any], source: str) -> list[Step]:
    """The steps an experiment file describes, in order, every table and key checked."""
    shared = {k: v for k, v in tables.items() if not isinstance(v, (dict, list)) and not _is_global(root, k)}
    known = {table for table, _, _ in STEPS}
    for name in _table_names(tables):
        if name not in known:
            raise unknown_table(name, known, source)
    steps: list[Step] = []
    for table, stage, path in STEPS:
        entries = _lookup(tables, table)
        entries = entries if isinstance(entries, list) else [entries] if entries is not None else []
        command = subcommand(root, path)
        for index, entry in enumerate(entries):
            where = f"{source} [{table}]"
            if not isinstance(entry, dict):
                raise UsageError(f"{where}: expected a table of options")
            for key in entry:
                if find_param(command, key, where).name in DECIDED_BY_PIPELINE:
                    raise UsageError(f"{where}: '{key}' is decided by the pipeline from the run's state")
            name = table if len(entries) == 1 else f"{table}[{index + 1}]"
            steps += _steps_of(command, name, stage, path, {**_shared_for(command, shared), **entry}, where)
    _check_shared(root, shared, source)
    return steps


def _steps_of(
    command: Any, name: str, stage: str, path: tuple[str, ...], table: dict[str, Any], where: str
) -> list[Step]:
    """One step per value of a list given to a one-value argument (e.g. `run = ["a", "b"]` for eval)."""
    lists = {
        key: value
        for key, value in table.items()
        if isinstance(value, list) and _is_single_argument(find_param(command, key, where))
    }
    combinations = list(product(*lists.values()))
    steps = []
    for values in combinations:
        entry = {**table, **dict(zip(lists, values, strict=True))}
        run = next(
            (str(v) for k, v in entry.items() if find_param(command, k, where).name == "run_name"), None
        )
        steps.append(
            Step(
                name=name if len(combinations) == 1 else f"{name}:{','.join(map(str, values))}",
                stage=stage,
                words=[*path, *table_words(command, entry, where)],
                run=run if stage in ("pretrain", "sft") else None,
            )
        )
    return steps


def _is_single_argument(param: Any) -> bool:
    return param.param_type_name == "argument" and param.nargs == 1


def _table_names(tables: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted name of every table, descending into the [pretrain] and [sft] groups."""
    found = []
    for key, value in tables.items():
        name = f"{prefix}{key}"
        if name in ("pretrain", "sft") and isinstance(value, dict):
            found += _table_names(value, f"{name}.")
        elif isinstance(value, (dict, list)):
            found.append(name)
    return found


def _lookup(tables: dict[str, Any], dotted: str) -> Any:
    value: Any = tables
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _is_global(root: Any, key: str) -> bool:
    return any(
        key.replace("_", "-") in (o.lstrip("-"), (p.name or "").replace("_", "-"))
        for p in root.params
        for o in p.opts
    )


def _shared_for(command: Any, shared: dict[str, Any]) -> dict[str, Any]:
    """The shared values this step's command takes (its table may override them)."""
    names = {
        n.replace("_", "-")
        for p in command.params
        if p.param_type_name == "option"
        for n in (p.name, *[o.lstrip("-") for o in p.opts])
    }
    return {key: value for key, value in shared.items() if key.replace("_", "-") in names}


def _check_shared(root: Any, shared: dict[str, Any], source: str) -> None:
    """A shared key must be taken by some step's command: else it is a typo."""
    commands = [subcommand(root, path) for _, _, path in STEPS]
    for key in shared:
        if not any(_shared_for(command, {key: None}) for command in commands):
            find_param(root, key, source)  # names the closest global option, or says unknown


def _global_words(root: Any, tables: dict[str, Any], source: str) -> tuple[list[str], Path]:
    """The global options for every step: the file's, then those given on this command line."""
    values = {
        find_param(root.command, k, source).name: v for k, v in tables.items() if _is_global(root.command, k)
    }
    for param in root.command.params:
        source_of = root.get_parameter_source(param.name)
        if source_of is not None and source_of.name == "COMMANDLINE":
            values[param.name] = root.params[param.name]
    params = [param.name for param in root.command.params]  # in --help order
    table = {name: values[name] for name in params if values.get(name) not in (None, False)}
    words = table_words(
        root.command, {k: str(v) if isinstance(v, Path) else v for k, v in table.items()}, source
    )
    home = Path(str(values["home"])).expanduser() if values.get("home") else globals_of(root).home
    return words, home


def _print_planned(step: Step, decision: Decision, line: list[str]) -> None:
    if decision.action == "skip":
        out.print(f"# {step.name}: {decision.reason}; skipped", highlight=False)
        return
    if decision.reason:
        out.print(f"# {step.name}: {decision.reason}", highlight=False)
    out.print(shlex.join(line), highlight=False, soft_wrap=True)


def _invoke(root: Any, args: list[str]) -> int:
    """Run one `llada` command line in this process; its exit code (errors are shown as usual)."""
    return root.main(args=args, prog_name="llada", standalone_mode=False)
