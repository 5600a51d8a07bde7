"""A loss that becomes NaN or infinite stops the run in one line, marked failed, never completed."""

from __future__ import annotations

import json

from llada_cli.engine.training.trainer import Trainer
from tests.conftest import MICRO


def test_a_diverged_loss_stops_the_run_as_failed(cli, monkeypatch):
    original = Trainer._train_step

    def diverging(self):
        loss, tokens, metrics = original(self)
        return (float("nan") if self.step == 2 else loss), tokens, metrics

    monkeypatch.setattr(Trainer, "_train_step", diverging)
    result = cli("pretrain", "ar", *MICRO, "--max-steps", "4", "--save-every", "1", "--run-name", "nan")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1 and "Traceback" not in result.stderr
    assert (
        "the loss became nan at step 3" in result.stderr and "last good checkpoint is step 2" in result.stderr
    )
    assert json.loads((cli.home / "runs/nan/run.json").read_text())["status"] == "failed"
