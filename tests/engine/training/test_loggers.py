"""--logger: TensorBoard and W&B receive the records metrics.jsonl gets; a missing extra is one line."""

from __future__ import annotations

import importlib.machinery
import sys
import types

import pytest

from tests.conftest import MICRO

ARGS = ["pretrain", "ar", *MICRO, "--max-steps", "4", "--eval-every", "2"]


def _scalars(records: list[dict], key: str) -> dict[int, float]:
    return {r["step"]: r[key] for r in records if key in r}


def test_tensorboard_gets_the_same_scalars_as_metrics_jsonl_across_a_resume(cli):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cli.ok(*ARGS, "--logger", "tensorboard", "--run-name", "tb")
    cli.ok("pretrain", "ar", "--run-name", "tb", "--resume", "--max-steps", "6")
    events = EventAccumulator(str(cli.home / "runs/tb/tensorboard"))
    events.Reload()
    metrics = cli.metrics("tb")
    assert [r["step"] for r in metrics] == [1, 2, 3, 4, 5, 6]
    for key in ("loss", "val_loss", "lr"):
        logged = {e.step: e.value for e in events.Scalars(key)}
        assert logged == pytest.approx(_scalars(metrics, key), rel=1e-6), key


class FakeWandb(types.ModuleType):
    """Records what llada hands to wandb (init settings, each log call, finish)."""

    def __init__(self) -> None:
        super().__init__("wandb")
        self.__spec__ = importlib.machinery.ModuleSpec("wandb", None)  # "installed"
        self.inits: list[dict] = []
        self.logged: list[tuple[int, dict]] = []
        self.finished = 0

    def init(self, **settings):
        self.inits.append(settings)
        return types.SimpleNamespace(
            log=lambda data, step: self.logged.append((step, data)), finish=self.finish
        )

    def finish(self) -> None:
        self.finished += 1


def test_wandb_gets_every_record_offline_and_a_resume_continues_its_run(cli, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cli.ok(*ARGS, "--logger", "wandb", "--run-name", "wb")
    [settings] = fake.inits
    assert settings["mode"] == "offline" and settings["name"] == "wb" and settings["resume"] == "allow"
    assert settings["config"]["learning_rate"] == 3e-4
    metrics = cli.metrics("wb")
    assert [step for step, _ in fake.logged] == [r["step"] for r in metrics]
    assert all(
        data["loss"] == pytest.approx(r["loss"]) for (_, data), r in zip(fake.logged, metrics, strict=True)
    )
    assert fake.finished == 1
    cli.ok("pretrain", "ar", "--run-name", "wb", "--resume", "--max-steps", "6", "--logger", "wandb")
    assert fake.inits[1]["id"] == settings["id"]  # the same W&B run goes on


@pytest.mark.parametrize("logger", ["tensorboard", "wandb"])
def test_a_missing_extra_is_one_line_before_anything_is_written(cli, monkeypatch, logger):
    monkeypatch.setitem(sys.modules, logger, None)  # as if not installed
    result = cli(*ARGS, "--logger", logger, "--run-name", "x")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: --logger {logger} needs the {logger} package: pip install 'llada-cli[{logger}]'"
    )
    assert not (cli.home / "runs" / "x").exists()
