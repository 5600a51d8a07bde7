"""The resume hint an interrupted run prints (cli/training.py) runs as written."""

from __future__ import annotations

from llada_cli.engine.runs.record import RunInfo
from tests.conftest import MICRO
from tests.engine.training.test_resume import _interrupt_at


def test_the_printed_resume_hint_of_an_interrupted_sft_runs_as_written(cli, monkeypatch):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "2", "--run-name", "base")
    _interrupt_at(3, monkeypatch)
    args = ["sft", "--base", "base", "--batch-size", "4", "--max-steps", "4", "--save-every", "2"]
    killed = cli(*args, "--run-name", "c1")
    assert killed.exit_code == 130
    hint = killed.stderr.split("resumes from step 2: ", 1)[1].split()
    assert hint[:3] == ["llada", "--home", str(cli.home)] and "--base" not in hint
    monkeypatch.undo()
    cli.ok(*hint[3:])
    assert RunInfo.load(cli.home / "runs" / "c1" / "run.json").status == "completed"
