"""`llada pipeline EXPERIMENT.toml`: one file runs the whole experiment, step by step.

The file has one table per step, holding that command's options under their flag names, and
shared values at the top: the global options (home, device, seed) and options every step that
takes them receives (a model shape, a batch size). Each step is exactly a `llada ...` command
line; `--dry-run` prints them for a shell script.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import typer

from ..engine.errors import UsageError, named
from ..engine.run_options import FRESH_START, TEXT_ONLY
from ..engine.runs.registry import Registry
from .commandline import find_param, load_tables, parse_words, subcommand, table_words, unknown_table
from .common import check_home, cli_errors, err, globals_of, out
from .experiment import Decision, PipelineState, Step, decide, run_inputs
from .root import before_command

# (table, stage, command): the steps in the order they run
STEPS = (
    ("data", "data", ("data", "fetch")),
    ("pretrain.ar", "pretrain", ("pretrain", "ar")),
    ("pretrain.diffusion", "pretrain", ("pretrain", "diffusion")),
    ("sft.ar", "sft", ("sft",)),
    ("sft.diffusion", "sft", ("sft",)),
    ("dpo.ar", "dpo", ("dpo",)),
    ("dpo.diffusion", "dpo", ("dpo",)),
    ("grpo.ar", "grpo", ("grpo",)),
    ("grpo.diffusion", "grpo", ("grpo",)),
    ("runs.merge", "merge", ("runs", "merge")),
    ("eval", "eval", ("eval",)),
    ("sample", "sample", ("sample",)),
    ("compare", "compare", ("compare",)),
    ("plot", "plot", ("plot",)),
)
# [pretrain], [sft], [dpo], [grpo], [runs]
GROUPS = {table.split(".")[0] for table, _, _ in STEPS if "." in table}
FINE_TUNING = ("sft", "dpo", "grpo")  # the stages that train from a base run, of its kind
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

    Every step's values are checked as its command would check them before any step runs. A step
    whose run completed with the same settings is skipped; an interrupted one resumes; a changed
    one is refused with the differences unless --overwrite.
    """
    if stage not in STAGES:
        raise UsageError(f"unknown stage '{stage}'; choose one of {', '.join(STAGES)}")
    root = ctx.find_root()
    tables = load_tables(experiment)
    global_words, home = _global_words(root, tables, str(experiment))
    registry = Registry(home)
    steps = [s for s in experiment_steps(root, tables, str(experiment)) if stage in ("all", s.stage)]
    if not steps:
        raise UsageError(
            f"{experiment}: no step of stage '{stage}' (tables: {', '.join(t for t, *_ in STEPS)})"
        )
    state = PipelineState.of(registry, experiment)
    for step in steps:
        inputs = run_inputs(registry, step) if registry.runs_dir.is_dir() else {}
        decision = decide(registry, state, step, inputs, overwrite, global_words)
        line = ["llada", *global_words, *step.words, *decision.extra_words()]
        if dry_run:
            _print_planned(step, decision, line)
            continue
        if decision.action == "skip":
            err.print(f"{step.name}: {decision.reason}; skipped", highlight=False)
            continue
        before_command(ctx)  # torch's threads, once: a dry run loads no torch
        err.print(f"{step.name}: {shlex.join(line)}", highlight=False, style="bold")
        state.record(step, inputs, done=False)
        code = _invoke(root.command, line[1:])
        if code:
            err.print(f"pipeline stopped at step {step.name} (exit {code})", highlight=False)
            raise typer.Exit(code)
        state.record(step, run_inputs(registry, step), done=True)


def experiment_steps(root: Any, tables: dict[str, Any], source: str) -> list[Step]:
    """The steps an experiment file describes, in order, every table, key and value checked: each
    step's command line is read by its command's own parser (`root`: the root context)."""
    shared = {
        k: v for k, v in tables.items() if not isinstance(v, (dict, list)) and not _is_global(root.command, k)
    }
    known = {table for table, _, _ in STEPS}
    for name in _table_names(tables):
        if name not in known:
            raise unknown_table(name, known, source)
    _check_shared(root.command, shared, source)
    planned: list[tuple[StepTable, Step, dict[str, Any]]] = []
    for table, stage, path in STEPS:
        entries = _lookup(tables, table)
        entries = entries if isinstance(entries, list) else [entries] if entries is not None else []
        command = subcommand(root.command, path)
        for index, entry in enumerate(entries):
            where = f"{source}: [{table}]"
            if not isinstance(entry, dict):
                raise UsageError(f"{where}: expected a table of options")
            for key in entry:
                if find_param(command, key, where).name in DECIDED_BY_PIPELINE:
                    raise UsageError(f"{where}: '{key}' is decided by the pipeline from the run's state")
            given = _shared_for(command, _where_they_apply(shared, stage, entry))
            labels = {key: f"{source}: {key}" for key in given} | {key: f"{where} {key}" for key in entry}
            name = table if len(entries) == 1 else f"{table}[{index + 1}]"
            step = StepTable(name, table, stage, path, {**given, **entry}, labels, where)
            planned += [(step, *parsed) for parsed in _steps_of(root, step)]
    _check_meaning(root.command, planned)
    return [step for _, step, _ in planned]


@dataclass(frozen=True)
class StepTable:
    """One step's table: its values (first the shared ones its command takes) and how a message
    names each key (`FILE: [table] key`, or `FILE: key` for a shared one)."""

    name: str  # "pretrain.ar", or "eval[2]" for the second of a list
    table: str  # "pretrain.ar"
    stage: str
    path: tuple[str, ...]  # the command: ("pretrain", "ar")
    values: dict[str, Any]
    labels: dict[str, str]
    where: str  # `FILE: [table]`


def _steps_of(root: Any, table: StepTable) -> list[tuple[Step, dict[str, Any]]]:
    """The table's steps with the values their commands read: one step per value of a list given to
    a one-value argument (e.g. `run = ["a", "b"]` for eval)."""
    command = subcommand(root.command, table.path)
    for key, value in table.values.items():
        if value == []:
            raise UsageError(f"{table.labels[key]}: an empty list; give one or more values, or leave it out")
    lists = {
        key: value
        for key, value in table.values.items()
        if isinstance(value, list) and _is_single_argument(find_param(command, key, table.where))
    }
    combinations = list(product(*lists.values()))
    parent = _context_above(root, table.path)
    steps = []
    for values in combinations:
        entry = {**table.values, **dict(zip(lists, values, strict=True))}
        words = table_words(command, entry, table.where, table.labels)
        params = parse_words(command, words, parent, entry, table.labels, table.where)
        _check_given(command, params, table)
        step = Step(
            name=table.name if len(combinations) == 1 else f"{table.name}:{','.join(map(str, values))}",
            stage=table.stage,
            words=[*table.path, *words],
            run=_run_made(table.stage, params),
        )
        steps.append((step, params))
    return steps


def _run_made(stage: str, params: dict[str, Any]) -> str | None:
    """The run a step makes: a training run's --run-name, a merge's --name; others make none."""
    if stage in ("pretrain", *FINE_TUNING):
        return params.get("run_name")
    return params.get("name") if stage == "merge" else None


def _check_given(command: Any, params: dict[str, Any], table: StepTable) -> None:
    """The checks the command makes of its options' values as it starts (bounds, choices: its
    configs'), named by the key that gave the value."""
    check = getattr(command.callback, "check_given", None)
    if check is None:
        return
    keys = {find_param(command, key, table.where).name: key for key in table.values}

    def shown(field: str) -> str:
        return keys.get(field, field.replace("_", "-"))

    try:
        check(params)
    except UsageError as error:  # its message starts with the option it refuses
        field = next((f for f in keys if str(error).startswith(named(f))), None)
        if field is None:
            raise UsageError(f"{table.where}: {error.render(shown)}") from None
        rest = UsageError(str(error).removeprefix(named(field)).strip())
        raise UsageError(f"{table.labels[keys[field]]}: {rest.render(shown)}") from None


def _context_above(root: Any, path: tuple[str, ...]) -> Any:
    """The context a command at `path` runs in (its groups' under the root's), so that it reads its
    values as in a run, the --config defaults included."""
    context, command = root, root.command
    for name in path[:-1]:
        command = command.commands[name]
        context = command.context_class(command, info_name=name, parent=context)
    return context


def _check_meaning(root: Any, planned: list[tuple[StepTable, Step, dict[str, Any]]]) -> None:
    """What no parser sees: an SFT's base of the other kind than its table (an SFT run keeps its
    base's kind), a diffusion run continued as diffusion, a plot with nothing to draw."""
    made = {step.run: table.table for table, step, _ in planned if step.run}
    for table, _, params in planned:
        if table.stage == "plot" and not params.get("runs") and params.get("trace") is None:
            raise UsageError(
                f'{table.where}: give runs, the runs to plot (e.g. runs = ["ar-base"]), or trace'
            )
        parent_key = (
            "init_from" if table.stage == "pretrain" else "base" if table.stage in FINE_TUNING else None
        )
        if parent_key is None:
            continue
        parent = params.get(parent_key)
        if table.stage in FINE_TUNING and not parent:
            raise UsageError(f"{table.where}: give base, the run to fine-tune")
        made_by = made.get(str(parent).split("@")[0]) if parent else None
        command = subcommand(root, table.path)
        if made_by == "runs.merge":  # steps run in table order: the merge comes after training
            key = next(k for k in table.values if find_param(command, k, table.where).name == parent_key)
            raise UsageError(
                f"{table.labels[key]}: '{parent}' is made by [runs.merge], which runs after the "
                "training steps; merge in one file and train from the merged run in another"
            )
        kind = made_by.partition(".")[2] if made_by else None
        wanted = table.table.partition(".")[2] if table.stage in FINE_TUNING else "ar"
        if kind is None or kind == wanted:
            continue
        key = next(k for k in table.values if find_param(command, k, table.where).name == parent_key)
        why = (
            f"{'an' if table.stage == 'sft' else 'a'} {table.stage.upper()} run keeps its base's kind: "
            f"fine-tune it under [{table.stage}.{kind}]"
            if table.stage in FINE_TUNING
            else "a diffusion pretraining continues an AR run"
        )
        raise UsageError(f"{table.labels[key]}: '{parent}' is the {kind} run of [{made_by}]; {why}")


def _is_single_argument(param: Any) -> bool:
    return param.param_type_name == "argument" and param.nargs == 1


def _table_names(tables: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted name of every table, descending into the [pretrain], [sft] and [runs] groups."""
    found = []
    for key, value in tables.items():
        name = f"{prefix}{key}"
        if name in GROUPS and isinstance(value, dict):
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


def _where_they_apply(shared: dict[str, Any], stage: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The shared values a step uses: a run with a parent (SFT, DPO, init-from) takes its shape and
    tokenizer from it, and SFT and DPO read conversations, so those steps leave the fresh model's and the
    text's options to the others rather than refuse them when they start."""
    with_parent = stage in FINE_TUNING or "init-from" in entry or "init_from" in entry
    dropped = {*FRESH_START} if with_parent else set()
    dropped |= {*TEXT_ONLY} if stage in FINE_TUNING else set()
    return {key: value for key, value in shared.items() if key.replace("-", "_") not in dropped}


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
    """A shared key must be taken by some step's command: else it is a typo, answered with the
    closest global or step option."""
    commands: list[Any] = [subcommand(root, path) for _, _, path in STEPS]
    for key in shared:
        if not any(_shared_for(command, {key: None}) for command in commands):
            options = [p for command in commands for p in command.params if p.param_type_name == "option"]
            find_param(SimpleNamespace(params=[*root.params, *options]), key, source)


def _global_words(root: Any, tables: dict[str, Any], source: str) -> tuple[list[str], Path]:
    """The global options for every step: the file's, then those given on this command line; and
    the home they name. The file's are read by the root's parser, even those the line overrides."""
    given = {find_param(root.command, k, source).name: k for k in tables if _is_global(root.command, k)}
    labels = {name: f"{source}: {key}" for name, key in given.items()}
    values = {name: tables[key] for name, key in given.items()}
    words = [*_words(root.command, values, source, labels), "pipeline"]
    parse_words(root.command, words, None, values, labels, source)
    if "home" in values:
        check_home(Path(str(values["home"])).expanduser(), labels["home"])
    for param in root.command.params:
        source_of = root.get_parameter_source(param.name)
        if source_of is not None and source_of.name == "COMMANDLINE":
            values[param.name] = root.params[param.name]
    home = Path(str(values["home"])).expanduser() if values.get("home") else globals_of(root).home
    return _words(root.command, values, source, labels), home


def _words(root: Any, values: dict[str, Any], source: str, labels: dict[str, str]) -> list[str]:
    """The global options' words, in --help order; a switch given as false is left out."""
    table = {
        p.name: str(values[p.name]) if isinstance(values[p.name], Path) else values[p.name]
        for p in root.params
        if values.get(p.name) is not None and values[p.name] is not False  # 0 is a value
    }
    return table_words(root, table, source, labels)


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
