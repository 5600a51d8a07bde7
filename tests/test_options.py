"""Options declared once: the engine checks them by field, the CLI shows them as flags."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from llada_cli.engine.config import TrainConfig
from llada_cli.engine.diffusion_pretraining import MASK_SCHEDULES, DiffusionPretrainConfig
from llada_cli.engine.errors import UsageError
from llada_cli.engine.options import option_fields
from llada_cli.engine.sampling.settings import DiffusionSettings
from llada_cli.engine.schedules import LR_SCHEDULES
from tests.conftest import MICRO

ENGINE = Path(__file__).parents[1] / "llada_cli" / "engine"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TrainConfig(grad_accum=0), "`grad_accum` must be at least 1, got 0"),
        (lambda: TrainConfig(learning_rate=math.nan), "`learning_rate` must be a number, got nan"),
        (
            lambda: TrainConfig(lr_schedule="linear"),
            "`lr_schedule` 'linear' is unknown: use one of cosine, wsd",
        ),
        (lambda: TrainConfig(max_steps=2, epochs=1.0), "`max_steps` and `epochs` are incompatible"),
        (lambda: DiffusionPretrainConfig(iid_mask_eps=1.0), "`iid_mask_eps` must be less than 1, got 1"),
        (lambda: DiffusionSettings(gen_length=0), "`gen_length` must be at least 1, got 0"),
    ],
)
def test_the_engine_refuses_bad_values_naming_the_field(make, message):
    with pytest.raises(UsageError, match=message):
        make()


def test_choices_are_the_keys_of_the_registries():
    specs = {f.name: spec for f, spec in option_fields(TrainConfig)}
    assert specs["lr_schedule"].choices == tuple(LR_SCHEDULES)
    specs = {f.name: spec for f, spec in option_fields(DiffusionPretrainConfig)}
    assert specs["mask_schedule"].choices == tuple(MASK_SCHEDULES)


def test_the_engine_spells_no_flag():
    for path in ENGINE.rglob("*.py"):
        text = path.read_text()
        assert '"--' not in text and "'--" not in text, path


def test_help_shows_every_training_option_with_its_default_and_aliases(cli):
    text = cli.ok("pretrain", "ar", "--help").stdout
    for field, _ in option_fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in text, field.name
    for alias in ("--max-iters", "--lr", "--max-seq-len", "--tokenizer-json", "-n"):
        assert alias in text
    assert "cosine|wsd|constant" in text and "0.0003" in text
    assert "--load-from" in cli.ok("sft", "--help").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grad-accum", "0"], "--grad-accum must be at least 1, got 0"),
        (["--learning-rate", "nan"], "--learning-rate must be a number, got nan"),
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
