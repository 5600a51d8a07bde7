"""The moving average of the weights (training/ema.py, --ema-decay): the update by hand, what a
checkpoint stores, validation on the average, and an exact resume."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from llada_cli.engine.errors import UsageError
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.runtime.distributed import World
from llada_cli.engine.training.ema import EMA
from tests.engine.training.test_trainer import CONFIG, trainer, weights

EMA_FILE = "ema.safetensors"


def test_one_update_is_decay_times_the_average_plus_the_rest_times_the_weights() -> None:
    model = Transformer(CONFIG)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    ema = EMA(model, decay=0.75)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update()
    for name, value in zip(ema.names, ema.values, strict=True):
        torch.testing.assert_close(value, 0.75 * before[name] + 0.25 * (before[name] + 1.0))


def test_the_average_is_applied_for_a_while_and_the_weights_come_back_bit_for_bit() -> None:
    model = Transformer(CONFIG)
    own = {name: p.detach().clone() for name, p in model.named_parameters()}
    ema = EMA(model, decay=0.5)
    for value in ema.values:
        value.zero_()
    with ema.applied():
        assert all(p.abs().sum() == 0 for p in model.parameters())
    for name, p in model.named_parameters():
        assert torch.equal(p, own[name]), name


def test_a_checkpoint_holds_the_average_of_the_start_and_each_step(tmp_path) -> None:
    start = weights(trainer(tmp_path, "start", max_steps=1))  # the same seed: the same first weights
    one = trainer(tmp_path, "ema", max_steps=1, ema_decay=0.5)
    one.fit()
    folder = one.run.checkpoint_dir(1)
    stored, trained = load_file(str(folder / EMA_FILE)), load_file(str(folder / "model.safetensors"))
    for name in stored:
        torch.testing.assert_close(stored[name], 0.5 * start[name] + 0.5 * trained[name])


def test_validation_scores_the_average(tmp_path) -> None:
    averaged = trainer(tmp_path, "averaged", max_steps=2, ema_decay=0.9)
    averaged.fit()
    plain = trainer(tmp_path, "plain", max_steps=2)  # no average: it scores its own weights
    plain.model.load_state_dict(averaged.ema.weights(weights(averaged)))
    assert averaged.validation_loss() == plain.validation_loss()
    plain.model.load_state_dict(weights(averaged))
    assert averaged.validation_loss() != plain.validation_loss()


def test_fsdp_over_several_processes_is_refused_with_an_average(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("llada_cli.engine.training.trainer.shard", lambda *args: None)
    with pytest.raises(UsageError, match="`ema_decay` does not work with `fsdp` on several processes yet"):
        trainer(tmp_path, "sharded", world=World(rank=0, world_size=2), fsdp=True, ema_decay=0.9)
