"""Resuming a training run: the same weights and metrics as a run never stopped, extending a finished
run, and the refusals (changed settings, removed or damaged checkpoints)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from llada_cli.engine.runs.record import RunInfo
from llada_cli.engine.training.trainer import Trainer
from tests.cli.test_errors import AR, ONE_STEP, one_line_error
from tests.conftest import MICRO
from tests.engine.training.test_trainer import FakeObjective, metrics, trainer, weights


def _interrupt_at(step: int, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Trainer._train_step

    def train_step(self):
        if self.step == step:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "_train_step", train_step)


def _without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in records]


def test_a_killed_run_resumes_to_the_same_weights_and_metrics(tmp_path):
    straight = trainer(tmp_path, "straight", save_every=2)
    assert straight.fit() == "completed"
    killed = trainer(tmp_path, "killed", FakeObjective(fail_at_step=4), save_every=2)
    with pytest.raises(KeyboardInterrupt):
        killed.fit()  # steps 1-4 done, checkpoint at 4, the fifth dies
    resumed = trainer(tmp_path, "killed", save_every=2)
    resumed.resume()
    assert resumed.step == 4
    assert resumed.fit() == "completed"
    for name, tensor in weights(straight).items():
        assert torch.equal(tensor, weights(resumed)[name]), name
    assert metrics(resumed) == metrics(straight)


def test_a_killed_run_resumes_its_moving_average_exactly(tmp_path) -> None:
    straight = trainer(tmp_path, "straight", save_every=2, ema_decay=0.8)
    straight.fit()
    killed = trainer(tmp_path, "killed", FakeObjective(fail_at_step=4), save_every=2, ema_decay=0.8)
    with pytest.raises(KeyboardInterrupt):
        killed.fit()
    resumed = trainer(tmp_path, "killed", save_every=2, ema_decay=0.8)
    resumed.resume()
    resumed.fit()
    final = straight.run.latest_step()
    expected = load_file(str(straight.run.checkpoint_dir(final) / "ema.safetensors"))
    got = load_file(str(resumed.run.checkpoint_dir(final) / "ema.safetensors"))
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_interrupted_run_resumes_with_identical_results(cli, monkeypatch):
    args = ["pretrain", "diffusion", *MICRO, "--max-steps", "6", "--save-every", "3", "--eval-every", "3"]
    cli.ok(*args, "--run-name", "straight")
    _interrupt_at(4, monkeypatch)
    killed = cli(*args, "--run-name", "killed")
    assert killed.exit_code == 130
    assert (
        f"run 'killed' resumes from step 3: llada --home {cli.home} pretrain diffusion "
        "--run-name killed --resume" in killed.stderr
    )
    monkeypatch.undo()
    cli.ok(*args, "--run-name", "killed", "--resume")
    assert _without_timing(cli.metrics("killed")) == _without_timing(cli.metrics("straight"))
    straight = load_file(cli.home / "runs/straight/checkpoints/step-0000006/model.safetensors")
    resumed = load_file(cli.home / "runs/killed/checkpoints/step-0000006/model.safetensors")
    assert all((straight[k] == resumed[k]).all() for k in straight)


def test_resume_extends_a_finished_run_and_refuses_other_changes(cli):
    args = ["pretrain", "ar", *MICRO, "--max-steps", "2", "--run-name", "short"]
    cli.ok(*args)
    finished = cli("pretrain", "ar", "--run-name", "short", "--resume")
    assert finished.exit_code == 2 and "--max-steps" in finished.stderr
    changed = cli("pretrain", "ar", "-n", "short", "--resume", "--max-steps", "4", "--learning-rate", "0.01")
    assert changed.exit_code == 2 and "--learning-rate 0.01" in changed.stderr
    wrong_kind = cli("pretrain", "diffusion", "--run-name", "short", "--resume", "--max-steps", "4")
    assert wrong_kind.exit_code == 2 and "llada pretrain ar" in wrong_kind.stderr
    cli.ok("pretrain", "ar", "--run-name", "short", "--resume", "--max-steps", "4")
    info = json.loads((cli.home / "runs/short/run.json").read_text())
    assert info["train"]["max_steps"] == 4 and info["status"] == "completed"
    assert [r["step"] for r in cli.metrics("short") if r.get("kind", "train") == "train"][-1] == 4


def test_a_resumed_run_names_the_preset_it_was_made_with(cli, monkeypatch):
    _interrupt_at(2, monkeypatch)
    killed = cli("pretrain", "ar", *MICRO, "--max-steps", "4", "--save-every", "1", "--run-name", "t")
    assert killed.exit_code == 130
    monkeypatch.undo()
    resumed = cli.ok("pretrain", "ar", "--run-name", "t", "--resume")
    assert "AR pretraining, preset tiny," in resumed.stderr.splitlines()[0]
    assert RunInfo.load(cli.home / "runs" / "t" / "run.json").preset == "tiny"


def test_resuming_a_run_whose_checkpoints_were_removed_is_refused(cli):
    cli.ok(*AR, *ONE_STEP)
    run = cli.home / "runs" / "bad"
    shutil.rmtree(run / "checkpoints")
    before = (run / "run.json").read_bytes()
    result = cli(*AR, "--run-name", "bad", "--resume", "--max-steps", "4")
    assert "reached step 2 but" in one_line_error(result, 1)
    assert "holds no checkpoint: there is nothing to resume from" in result.stderr
    assert (run / "run.json").read_bytes() == before and not (run / "checkpoints").exists()


def test_a_merged_run_has_nothing_to_resume(cli):
    cli.ok(*AR, *MICRO, "--max-steps", "2", "--save-every", "1", "--run-name", "r")
    cli.ok("runs", "merge", "r@1", "r@2", "--name", "soup")
    result = cli(*AR, "--run-name", "soup", "--resume", "--max-steps", "4")
    assert one_line_error(result, 2) == "run 'soup' was merged, not trained: there is nothing to resume"


@pytest.mark.parametrize(
    ("damaged", "content", "reason"),
    [
        ("trainer.pt", b"\x80\x02garbage" * 20, "truncated or not a torch file"),
        ("trainer.pt", None, "truncated or not a torch file"),  # cut after 100 bytes
        ("model.safetensors", b"\xff" * 300, "Error while deserializing header"),
    ],
)
def test_a_damaged_checkpoint_on_resume_names_the_file(cli, pipeline, damaged, content, reason):
    run = cli.home / "runs" / "ar-base"
    shutil.copytree(pipeline.home / "runs" / "ar-base", run)
    step = run / "checkpoints" / "step-0000006"
    path = step / damaged
    path.write_bytes(content if content is not None else path.read_bytes()[:100])
    before = (run / "run.json").read_text()
    error = one_line_error(cli(*AR, "--run-name", "ar-base", "--resume", "--max-steps", "8"), 1)
    assert error.startswith(f"cannot read {path} ({reason}")
    assert error.endswith(f"the checkpoint is damaged: remove {step} to resume from the checkpoint before it")
    assert (run / "run.json").read_text() == before


def test_a_refused_resume_leaves_run_json_as_it_was(cli, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"paragraph {i} of the corpus, with a few words.\n\n" for i in range(300)))
    data = ("--data", str(corpus), "--dtype", "fp32")
    cli.ok("pretrain", "ar", *MICRO, *data, "--max-steps", "2", "--run-name", "r")
    record = cli.home / "runs" / "r" / "run.json"
    before = record.read_bytes()
    corpus.write_text(corpus.read_text() * 2)  # the data changed: the stream cannot continue
    refused = cli("pretrain", "ar", "--run-name", "r", "--resume", "--max-steps", "4")
    assert refused.exit_code == 2 and "cannot resume: the data now has" in refused.stderr
    assert record.read_bytes() == before
