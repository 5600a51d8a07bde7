"""A run's folder through its life (runs/lifecycle.py): an overwrite that fails or is stopped gives the
old run back or keeps it visible, and a resumed run is cleaned of what a killed write left."""

from __future__ import annotations

import json

from llada_cli.engine.training.trainer import Trainer
from tests.cli.test_errors import assert_one_line_error
from tests.engine.runs.test_locks import TRAIN


def test_overwrite_that_fails_its_checks_gives_the_old_run_back(pipeline, tmp_path):
    before = (pipeline.home / "runs/ar-chat/run.json").read_text()
    result = pipeline(
        "sft",
        "--base",
        "ar-base",
        "--data",
        str(tmp_path / "missing.jsonl"),
        "--overwrite",
        "--run-name",
        "ar-chat",
    )
    assert_one_line_error(result, 2, "data file not found")
    assert (pipeline.home / "runs/ar-chat/run.json").read_text() == before
    assert not list((pipeline.home / "runs").glob(".*"))


def test_an_overwrite_stopped_before_its_first_checkpoint_keeps_the_old_run_visible(cli, monkeypatch):
    cli.ok(*TRAIN, "--run-name", "x")
    weights = (cli.home / "runs/x/checkpoints/step-0000002/model.safetensors").read_bytes()

    def stopped(self, total):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_loop", stopped)
        stopped_run = cli(*TRAIN, "--run-name", "x", "--overwrite", "--learning-rate", "0.01")
    assert stopped_run.exit_code == 130
    # the old run was not deleted (the new one saved nothing): kept under a name the user can see
    kept = stopped_run.stderr.split("the old run is kept as '")[1].split("'")[0]
    assert kept.startswith("x.replaced-") and not (cli.home / "runs/.x.replaced").exists()
    assert (cli.home / "runs" / kept / "checkpoints/step-0000002/model.safetensors").read_bytes() == weights
    assert {row["name"] for row in json.loads(cli.ok("runs", "list", "--json").stdout)} == {"x", kept}

    cli.ok(*TRAIN, "--run-name", "x", "--overwrite")  # a completed overwrite drops the old run
    assert sorted(p.name for p in (cli.home / "runs").iterdir()) == sorted(["x", kept])


def test_resume_removes_what_a_killed_checkpoint_write_left(cli):
    cli.ok(*TRAIN, "--run-name", "r", "--save-every", "1")
    run = cli.home / "runs/r"
    partial = run / "checkpoints/.step-0000003.k1ll3d"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half a file")
    (run / ".latest.x1.tmp").write_text("step-0000003")
    cli.ok("pretrain", "ar", "--run-name", "r", "--resume", "--max-steps", "3")
    left = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert left[-1] == "step-0000003" and not [name for name in left if name.startswith(".")]
    assert not list(run.glob(".*.tmp"))
