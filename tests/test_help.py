"""Help reads well at 80 columns; global options go anywhere; usage errors are one line."""

from __future__ import annotations

import re

import pytest
import typer

from llada_cli.cli import app
from llada_cli.cli.root import hoist_globals

COMMANDS = [
    c.split()
    for c in (
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


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
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
        if isinstance(default, str) and default:
            assert f"[default: {default}]" in flat, param.name


def test_sft_help_keeps_brackets_and_offers_only_the_row_length_of_the_shape(cli):
    text = " ".join(cli.ok("sft", "--help", columns=80).stdout.split())
    assert "Restrict t to [a,b], e.g. 0.2,0.8" in text
    assert "--seq-len" in text and "--hidden-size" not in text and "--preset" not in text


def test_sampler_defaults_are_shown(cli):
    text = " ".join(cli.ok("sample", "--help", columns=80).stdout.split())
    for shown in ("--remasking {low_confidence,random}", "[default: low_confidence]", "[default: none]"):
        assert shown in text, shown


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
        (["pretrain", "ar", "--batch-size", "many"], "--batch-size"),
        (["export"], "Missing argument"),
    ],
)
def test_usage_errors_are_one_line(cli, args, fragment):
    result = cli(*args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert fragment in lines[0]
