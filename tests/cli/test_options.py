"""Options as flags (cli/options.py): help shows them with defaults and aliases, bad values are one line."""

from __future__ import annotations

import pytest

from llada_cli.engine.config import TrainConfig
from llada_cli.engine.options import option_fields
from tests.conftest import MICRO


def test_help_shows_every_training_option_with_its_default_and_aliases(cli):
    text = cli.ok("pretrain", "ar", "--help").stdout
    for field, _ in option_fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in text, field.name
    for alias in ("--max-iters", "--lr", "--max-seq-len", "--tokenizer-json", "-n"):
        assert alias in text
    assert "{cosine,wsd,constant}" in text and "0.0003" in text
    assert "--load-from" in cli.ok("sft", "--help").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--devices", "0"], "--devices must be at least 1, got 0"),
        (["--global-batch-size", "0"], "--global-batch-size must be at least 1, got 0"),
        (["--tokenizer-sample-mb", "nan"], "--tokenizer-sample-mb must be a finite number, got nan"),
        (["--dropout", "1"], "--dropout must be less than 1, got 1"),
        (["--grad-accum", "0"], "--grad-accum must be at least 1, got 0"),
        (["--learning-rate", "nan"], "--learning-rate must be a finite number, got nan"),
        (["--val-fraction", "1"], "--val-fraction must be less than 1, got 1"),
    ],
)
def test_the_cli_refuses_bad_values_in_one_line_naming_the_flag(cli, args, message):
    result = cli("pretrain", "ar", *MICRO, *args, "--run-name", "bad")
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {message}"
    assert not (cli.home / "runs" / "bad").exists()


def test_a_bad_choice_is_refused_by_the_parser(cli):
    result = cli("pretrain", "diffusion", *MICRO, "--mask-schedule", "blocky", "--run-name", "bad")
    assert result.exit_code == 2 and "blocky" in result.output


def test_comma_lists_parse_into_tuples(cli):
    cli.ok(
        "pretrain", "diffusion", *MICRO, "--max-steps", "1", "--use-block-curriculum",
        "--wsd-block-sizes-up", "4,16", "--run-name", "lists",
    )  # fmt: skip
    info = cli.ok("runs", "show", "lists", "--json").stdout
    assert '"wsd_block_sizes_up": [\n      4,\n      16\n    ]' in info
    result = cli("pretrain", "diffusion", *MICRO, "--wsd-block-sizes-up", "4,x", "--run-name", "bad")
    assert result.exit_code == 2 and "comma-separated numbers" in result.output


def integer_flags() -> list[tuple[tuple[str, ...], str]]:
    """(command path, flag) of every integer option of every llada command, the global ones too."""
    import typer.main

    from llada_cli.cli import app

    found = []

    def walk(command, path: tuple[str, ...]) -> None:
        for param in command.params:
            if param.type_descriptor.annotation is int and param.param_type_name == "option":
                found.append((path, param.opts[0]))
        for name, child in getattr(command, "commands", {}).items():
            walk(child, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def test_every_integer_option_refuses_what_64_bits_cannot_hold(cli):
    flags = integer_flags()
    assert ((), "--seed") in flags and (("eval",), "--mc-num") in flags and (("sample",), "--seed") in flags
    for path, flag in flags:
        for number in (2**63, -(2**63) - 1, 10**23):
            result = cli(*path, flag, str(number))
            assert result.exit_code == 2 and "Traceback" not in result.output, (path, flag, result.output)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0], (path, flag)
            assert any(words in lines[0] for words in ("fit in 64 bits", "less than or", "greater than or"))
