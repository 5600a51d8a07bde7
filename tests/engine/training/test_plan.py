"""The step plan (training/plan.py): how many steps, and a global batch that must divide."""

from __future__ import annotations

import pytest

from llada_cli.engine.config import TrainConfig
from llada_cli.engine.training.plan import plan_steps
from tests.conftest import MICRO


@pytest.mark.parametrize(
    ("max_steps", "epochs", "expected"),
    [(None, None, 13), (5, None, 5), (None, 2.0, 25), (5, 2.0, 5), (100, 0.5, 7), (None, 0.01, 1)],
)
def test_steps_stop_at_whichever_of_max_steps_and_epochs_ends_first(max_steps, epochs, expected):
    # 100 rows, 8 rows a step: an epoch is ceil(100 / 8) = 13 steps
    config = TrainConfig(batch_size=8, max_steps=max_steps, epochs=epochs)
    assert plan_steps(config, train_rows=100) == expected


def test_a_global_batch_that_does_not_divide_is_refused(cli):
    result = cli("pretrain", "ar", *MICRO, "--global-batch-size", "6", "--run-name", "bad")
    assert result.exit_code == 2
    assert "--global-batch-size 6 is not a multiple of --batch-size 4 x 1 processes = 4" in result.stderr
    assert not (cli.home / "runs" / "bad").exists()
