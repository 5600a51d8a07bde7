"""The `llada` command itself (cli/root.py, cli/__init__.py): help reads well at 80 columns; global
options (--threads, --home, ...) go anywhere; usage errors are one line."""

from __future__ import annotations

import re
import shlex

import click
import pytest
import typer

from llada_cli.cli import app
from llada_cli.cli.root import _help_record, hoist_globals
from llada_cli.cli.usage_examples import EXAMPLES

COMMANDS = [
    c.split()
    for c in (
        "",
        "pretrain",
        "runs",
        "data",
        "sft",
        "sample",
        "chat",
        "compare",
        "eval",
        "sweep",
        "plot",
        "pipeline",
        "export",
        "pretrain ar",
        "pretrain diffusion",
        "data fetch",
        "runs list",
        "runs show",
        "runs rm",
        "runs import",
    )
]


def _command(path: list[str]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "llada" for p in COMMANDS])
def test_help_at_80_columns_shows_every_flag_whole_and_every_default(cli, path):
    text = cli.ok(*path, "--help", columns=80).stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "<bool>" not in text and "…" not in text
    flat = " ".join(text.split())
    for param in _command(path).params:
        if param.param_type_name != "option" or param.hidden:
            continue
        for flag in param.opts:
            assert re.search(rf"(^|[\s,]){re.escape(flag)}([\s,]|$)", flat), flag
        default = param.show_default
        if isinstance(default, str) and default and "(default" not in (param.help or ""):
            assert f"default: {default}]" in flat, param.name  # [default: X] or [env var: Y; default: X]


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "llada" for p in COMMANDS])
def test_every_option_states_its_default(path):
    command = _command(path)
    ctx = click.Context(command, info_name=" ".join(["llada", *path]))
    for param in command.get_params(ctx):
        if param.param_type_name != "option" or param.hidden or param.is_eager or not param.expose_value:
            continue
        text = _help_record(param, ctx)[1]
        assert re.search(r"\[default: [^]]+\]|\[required\]|; default: ", text), (param.name, text)


def test_a_default_in_words_replaces_the_field_value_and_an_unset_one_says_so(cli):
    text = " ".join(cli.ok("pretrain", "diffusion", "--help", columns=80).stdout.split())
    for shown in (
        "--max-steps, --max-iters N Optimizer steps. [default: one epoch]",
        "--seed N Seed of weights, data order and masks. [default: the global seed]",
        "--mask-schedule {iid_t,wsd}",
        "[default: iid_t]",
        "--global-batch-size N Rows per optimizer step over all processes; sets grad_accum from it. "
        "[default: none]",
        "--compile torch.compile the transformer blocks (a first step of compiling, then faster steps). "
        "[default: off]",
    ):
        assert shown in text, shown
    assert "[default: 0]" not in text.split("--seed N")[1].split("--eval-every")[0]


def test_sft_help_keeps_brackets_and_offers_only_the_shape_options_it_uses(cli):
    text = " ".join(cli.ok("sft", "--help", columns=80).stdout.split())
    assert "--mask-ratio-band FLOAT,FLOAT Restrict t to [a,b], e.g. 0.2,0.8. [default: none]" in text
    for offered in ("--seq-len, --max-seq-len N", "--dropout X", "--max-position-embeddings N"):
        assert offered in text, offered
    seq_len = text.split("--seq-len, --max-seq-len N")[1].split("--dropout")[0]
    assert "The model's context and training row length" in seq_len and "[default: the base run's]" in seq_len
    for ignored in (
        "--hidden-size",
        "--num-hidden-layers",
        "--preset",
        "--vocab-size",
        "--tokenizer-sample-mb",
    ):
        assert ignored not in text, ignored


def test_sampler_defaults_are_shown(cli):
    text = " ".join(cli.ok("sample", "--help", columns=80).stdout.split())
    for shown in (
        "Usage: llada sample [OPTIONS] [RUN]",
        "--remasking {low_confidence,margin,entropy,random} Which slots commit first: low_confidence (the "
        "candidate's probability), margin (top minus second probability), entropy (exp(-entropy)), random. "
        "[default: low_confidence]",
        "--cache {none,prefix,dual} Block KV cache (Fast-dLLM). [default: none]",
        "--temperature, --gen-temp X 0 = greedy / argmax: deterministic. [default: 0.0]",
        "--block-length N Semi-autoregressive block size. [default: 32 when it divides the gen length]",
        "--seed N Sampling seed. [default: global --seed]",
        "--json One JSON document on stdout. [default: off]",
    ):
        assert shown in text, shown


def test_root_help_names_metavars_and_the_home_default(cli):
    text = " ".join(cli.ok("--help", columns=80).stdout.split())
    assert "--threads N CPU threads for torch." in text
    assert "default: the user data folder" in text and "int range" not in text
    assert "Usage: llada runs import [OPTIONS] CHECKPOINT" in cli.ok("runs", "import", "--help").stdout


def test_version(cli):
    result = cli.ok("--version")
    assert re.fullmatch(r"llada \S+\n", result.stdout)


def test_global_options_work_after_the_subcommand(cli, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    assert "no runs yet in " + str(elsewhere) in cli.ok("runs", "list", "--home", str(elsewhere)).stderr


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["sample", "r", "--home", "H", "-v"], ["--home", "H", "-v", "sample", "r"]),
        (["sample", "r", "--seed", "3"], ["sample", "r", "--seed", "3"]),  # sample's own --seed
        (["pretrain", "ar", "-v", "-n", "x"], ["-v", "pretrain", "ar", "-n", "x"]),
        (["pretrain", "ar", "--seed", "3"], ["pretrain", "ar", "--seed", "3"]),  # its own --seed
        (["-q", "runs", "list", "--home=H"], ["-q", "--home=H", "runs", "list"]),
        (["sample", "r", "--prompt", "--home"], ["sample", "r", "--prompt", "--home"]),  # a value
    ],
)
def test_hoisting_moves_only_global_options(words, expected):
    assert hoist_globals(typer.main.get_command(app), words) == expected


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["sample", "x", "--bogus"], "No such option: --bogus"),
        (["sample", "x", "--temprature", "1"], "(Possible options: --temperature"),
        (["sample", "x", "--remasking", "best"], "'--remasking': 'best' is not one of 'low_confidence'"),
        (["pretrain", "ar", "--batch-size", "many"], "--batch-size"),
        (["export"], "Missing argument"),
    ],
)
def test_usage_errors_are_one_line(cli, args, fragment):
    result = cli(*args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert fragment in lines[0]


@pytest.mark.parametrize("group", [[], ["runs"], ["pretrain"], ["data"]])
def test_a_group_without_a_subcommand_prints_its_help(cli, group):
    result = cli(*group)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"Usage: {' '.join(['llada', *group])} [OPTIONS] COMMAND [ARGS]..."
    assert "Commands:" in lines and not result.stderr


def test_commands_are_listed_in_the_order_of_the_work(cli):
    lines = cli.ok("--help").stdout.splitlines()
    start = lines.index("Commands:") + 1
    listed = [line.split()[0] for line in lines[start : lines.index("", start)]]
    assert listed == [
        "data", "pretrain", "sft", "dpo", "grpo", "sample", "chat", "compare", "eval", "sweep", "plot",
        "runs", "export", "serve", "pipeline",
    ]  # fmt: skip


def test_threads_are_set_and_shown_with_verbose(pipeline, monkeypatch):
    result = pipeline("--threads", "1", "-v", "sample", "ar-chat", "-p", "hi", "--max-new-tokens", "2")
    assert result.exit_code == 0 and "torch threads: 1" in result.stderr
    monkeypatch.setenv("LLADA_THREADS", "2")
    result = pipeline("-v", "sample", "ar-chat", "-p", "hi", "--max-new-tokens", "2")
    assert "torch threads: 2" in result.stderr
    assert pipeline("--threads", "0", "sample", "ar-chat", "-p", "hi").exit_code == 2


def test_help_lists_every_command(cli):
    output = cli.ok("--help").output
    for command in ("data", "pretrain", "sft", "sample", "compare", "plot", "runs", "eval"):
        assert command in output


OWN_OPTIONS = {"sample": ("--prompt", "--chat"), "chat": ("--system",), "compare": ("--prompt", "--ar")}


@pytest.mark.parametrize("command", list(OWN_OPTIONS))
@pytest.mark.parametrize("columns", [60, 80])
def test_the_commands_own_options_come_before_the_sampler_panels(cli, command, columns):
    lines = cli.ok(command, "--help", columns=columns).stdout.splitlines()
    panels = [i for i, line in enumerate(lines) if re.fullmatch(r"(\w+ )?(sampling|side):", line, re.I)]
    assert len(panels) >= 2
    for option in OWN_OPTIONS[command]:
        at = next(i for i, line in enumerate(lines) if re.match(rf"\s+(-\w, )?{option}\b", line))
        assert lines.index("Options:") < at < min(panels), option
    if command != "compare":
        assert lines.index("Arguments:") < lines.index("Options:")


def test_an_options_panel_of_help_alone_stays_last(cli):
    lines = cli.ok("pretrain", "ar", "--help").stdout.splitlines()
    headings = [line for line in lines if line and not line.startswith(" ") and line.endswith(":")]
    assert headings[0] == "Run and data:" and headings[-2:] == ["Options:", "Examples:"]


def _all_commands(command=None, path=()):
    command = command or typer.main.get_command(app)
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _all_commands(sub, (*path, name))


ALL = list(_all_commands())


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "llada" for p, _ in ALL])
def test_every_command_has_examples_its_parser_reads(cli, path, command):
    examples = EXAMPLES[" ".join(path)]
    assert 1 <= len(examples) <= 3 and (len(examples) >= 2 or hasattr(command, "commands"))
    text = cli.ok(*path, "--help", columns=80).stdout
    assert text.split("Examples:\n")[1].splitlines() == [f"  {line}" for line in examples]
    for line in examples:
        words = shlex.split(line)
        assert words[0] == "llada" and len(f"  {line}") <= 80, line
        command, rest, parent = typer.main.get_command(app), words[1:], None
        while hasattr(command, "commands"):  # a group's examples are its commands' lines
            parent = command.context_class(command, info_name=command.name, parent=parent)
            command, rest = command.commands[rest[0]], rest[1:]
        command.make_context(command.name, rest, parent=parent)  # raises what a run would refuse


def test_runs_import_offers_no_training_options(cli):
    text = " ".join(cli.ok("runs", "import", "--help", columns=80).stdout.split())
    assert "--devices" not in text and "instead of training one" not in text
    assert "--tokenizer, --tokenizer-json PATH The model's tokenizer.json" in text
