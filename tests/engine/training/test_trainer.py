"""The Trainer (training/trainer.py) on its own: a tiny model, a fake objective, no CLI and no tokenizer.

Early stopping, gradient accumulation, checkpoint pruning, and the main-process rule (another
rank trains its share and writes nothing); then through the CLI, early stopping and a diverged
loss. Exact resume: test_resume.py.
"""

from __future__ import annotations

import json

import torch

from llada_cli.engine.config import ModelConfig, TrainConfig
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.objectives.losses import LossOutput, PretrainBatch
from llada_cli.engine.runs.record import RunInfo
from llada_cli.engine.runs.registry import Registry
from llada_cli.engine.runtime.distributed import World
from llada_cli.engine.training.plan import StepPlan
from llada_cli.engine.training.trainer import Trainer
from tests.conftest import MICRO

ROWS = torch.randint(0, 32, (24, 8), generator=torch.Generator().manual_seed(0))
CONFIG = ModelConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, seq_len=8)


class FakeObjective:
    """Mean squared logits, scaled by a draw from the trainer's generator (so its RNG state matters)."""

    def __init__(self, fail_at_step: int | None = None) -> None:
        self.fail_at_step = fail_at_step

    def __call__(self, model, batch, generator, progress) -> LossOutput:
        if self.fail_at_step is not None and model.training and progress == self.fail_at_step / 6:
            raise KeyboardInterrupt
        scale = 1.0 + torch.rand((), generator=generator)
        loss = model(batch.input_ids).float().pow(2).mean() * scale
        return LossOutput(loss, batch.input_ids.numel(), {"scale": scale})


def run_folder(tmp_path, name: str):
    registry = Registry(tmp_path)
    if (registry.runs_dir / name).exists():
        return registry.existing(name)
    run, _ = registry.prepare_new(name, overwrite=False)
    run.write_info(RunInfo(name=name, kind="ar", stage="pretrain", model=CONFIG, parameters=0))
    return run


def trainer(tmp_path, name: str, objective=None, world: World | None = None, **config) -> Trainer:
    torch.manual_seed(0)
    settings = dict(batch_size=4, max_steps=6, dtype="fp32", log_every=1, learning_rate=1e-2, seed=3)
    train = TrainConfig(**{**settings, **config})
    return Trainer(
        Transformer(CONFIG),
        objective or FakeObjective(),
        lambda idx: PretrainBatch(ROWS[idx]),
        len(ROWS),
        [PretrainBatch(ROWS[:4])],
        train,
        StepPlan.of(train, len(ROWS), world.world_size if world else 1),
        run_folder(tmp_path, name),
        torch.device("cpu"),
        world=world,
    )


def weights(t: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in t.model.state_dict().items()}


def metrics(t: Trainer) -> list[dict]:
    lines = t.run.metrics_path.read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"} for line in lines]


def test_early_stopping_ends_the_run_and_keeps_the_best_checkpoint(tmp_path):
    # no learning: the validation loss never improves after the first evaluation
    t = trainer(
        tmp_path,
        "flat",
        learning_rate=0.0,
        max_steps=20,
        eval_every=2,
        early_stop_patience=2,
        keep_checkpoints=1,
    )
    assert t.fit() == "early_stopped"
    assert t.step == 6  # best at 2, no gain at 4 and 6
    assert t.best["step"] == 2
    assert t.run.checkpoint_steps() == [2, 6]  # the newest, and the best kept past keep_checkpoints
    assert t.run.info().status == "early_stopped"


def test_accumulating_two_half_batches_equals_one_whole_batch(tmp_path):
    whole = trainer(tmp_path, "whole", max_steps=1, batch_size=4, grad_accum=1)
    halves = trainer(tmp_path, "halves", max_steps=1, batch_size=2, grad_accum=2)
    # the fake objective's scale differs per call: use a constant one for both
    whole.objective = halves.objective = lambda m, b, g, p: LossOutput(m(b.input_ids).pow(2).mean(), 1, {})
    whole.fit()
    halves.fit()
    for name, tensor in weights(whole).items():
        torch.testing.assert_close(weights(halves)[name], tensor, atol=1e-6, rtol=1e-5)


def test_checkpoints_are_pruned_to_the_newest(tmp_path):
    t = trainer(tmp_path, "pruned", max_steps=5, save_every=1, keep_checkpoints=2)
    t.fit()
    assert t.run.checkpoint_steps() == [4, 5]
    every = trainer(tmp_path, "kept", max_steps=3, save_every=1, keep_checkpoints=0)
    every.fit()
    assert every.run.checkpoint_steps() == [1, 2, 3]


class PretendWorld(World):
    """One rank of a world whose other processes are absent: collectives see this process only."""

    def average_gradients(self, model) -> None:
        pass

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.world_size

    def gather(self, value):
        return [value] * self.world_size


def test_only_the_main_process_writes_and_each_rank_reads_its_share(tmp_path):
    main = trainer(tmp_path, "main", max_steps=2, world=PretendWorld(rank=0, world_size=2))
    other = trainer(tmp_path, "other", max_steps=2, world=PretendWorld(rank=1, world_size=2))
    assert torch.cat((main.stream.next_indices(), other.stream.next_indices())).tolist() == (
        torch.randperm(len(ROWS), generator=torch.Generator().manual_seed(3))[:8].tolist()
    )
    other.fit()
    assert not other.run.metrics_path.exists() and other.run.checkpoint_steps() == []
    assert other.run.info().status == "created"


def test_adam_beta2_reaches_the_optimizer(tmp_path):
    assert trainer(tmp_path, "betas", adam_beta2=0.99).optimizer.param_groups[0]["betas"] == (0.9, 0.99)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    torch.manual_seed(0)
    model = Transformer(CONFIG)
    batch = PretrainBatch(ROWS[:4])
    results = []
    for checkpointing in (False, True):
        model.zero_grad()
        model.gradient_checkpointing = checkpointing
        loss = FakeObjective()(model, batch, torch.Generator().manual_seed(0), 0.0).loss
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (plain_loss, plain_grads), (ckpt_loss, ckpt_grads) = results
    assert torch.equal(plain_loss, ckpt_loss)
    for a, b in zip(plain_grads, ckpt_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_early_stopping_ends_cleanly_and_keeps_the_best(cli):
    cli.ok(
        "pretrain",
        "ar",
        *MICRO,
        "--max-steps",
        "20",
        "--eval-every",
        "1",
        "--learning-rate",
        "0",
        "--early-stop-patience",
        "2",
        "--early-stop-min-delta",
        "0.001",
        "--keep-checkpoints",
        "1",
        "--run-name",
        "es",
    )
    info = json.loads((cli.home / "runs/es/run.json").read_text())
    assert info["status"] == "early_stopped" and info["step"] == 3 and info["best"]["step"] == 1
    steps = sorted(int(p.name.split("-")[1]) for p in (cli.home / "runs/es/checkpoints").iterdir())
    assert steps == [1, 3]  # the best and the newest


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
