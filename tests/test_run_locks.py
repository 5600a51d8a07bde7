"""One process owns a run while it trains; what a killed process leaves is given back or cleaned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llada_cli.engine.training.trainer import Trainer
from tests.conftest import MICRO
from tests.test_cli_errors import assert_one_line_error

TRAIN = ["pretrain", "ar", *MICRO, "--max-steps", "2"]

# Another process that owns the run through the engine's lock until its stdin is closed.
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from llada_cli.engine.runs.locks import RunLock
    with RunLock.acquire(Path(sys.argv[1])):
        print("held", flush=True)
        sys.stdin.read()
    """
)


@pytest.fixture
def holder(cli):
    """Run 'live', trained, then held by another process (its run.json says running, as a
    trainer's does); the test may kill it."""
    cli.ok(*TRAIN, "--run-name", "live")
    info = cli.home / "runs/live/run.json"
    info.write_text(json.dumps(json.loads(info.read_text()) | {"status": "running"}))
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(cli.home / "runs/live")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert process.stdout.readline().strip() == "held"
    yield process
    if process.poll() is None:
        process.stdin.close()
    process.wait()


def status(cli, name: str) -> str:
    return json.loads(cli.ok("runs", "show", name, "--json").stdout)["status"]


def test_a_run_being_trained_refuses_other_writers_but_not_readers(cli, holder):
    before = (cli.home / "runs/live/run.json").read_text()
    for writer in (
        ["pretrain", "ar", "--run-name", "live", "--resume", "--max-steps", "4"],
        [*TRAIN, "--run-name", "live", "--overwrite"],
        ["runs", "rm", "live", "--yes"],
    ):
        assert_one_line_error(cli(*writer), 1, f"run 'live' is being trained by process {holder.pid} (")
    assert (cli.home / "runs/live/run.json").read_text() == before
    assert status(cli, "live") == "running"
    assert [row["status"] for row in json.loads(cli.ok("runs", "list", "--json").stdout)] == ["running"]
    cli.ok("sample", "live", "--prompt", "the", "--max-new-tokens", "2")

    holder.send_signal(signal.SIGKILL)  # the OS releases a killed owner's lock
    holder.wait()
    assert status(cli, "live") == "interrupted"  # run.json says running, nobody holds it
    cli.ok("pretrain", "ar", "--run-name", "live", "--resume", "--max-steps", "3")
    assert status(cli, "live") == "completed"


def test_a_stopped_overwrite_gives_the_old_run_back(cli):
    cli.ok(*TRAIN, "--run-name", "old")
    runs = cli.home / "runs"
    # what an overwrite killed before the new run's run.json leaves
    os.replace(runs / "old", runs / ".old.replaced")
    (runs / "old").mkdir()
    listed = cli.ok("runs", "list", "--json")
    assert "recovered run 'old'" in listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["old"]
    assert (runs / "old/checkpoints/step-0000002").is_dir() and not (runs / ".old.replaced").exists()


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


def test_a_folder_left_without_run_json_is_noted_refused_and_removable(cli):
    ghost = cli.home / "runs/ghost"
    ghost.mkdir(parents=True)
    (ghost / "tokenizer.json").write_text("{}")
    assert "run folder 'ghost' has no run.json" in cli.ok("runs", "list").stderr
    assert_one_line_error(cli("pretrain", "ar", "--run-name", "ghost", "--resume"), 2, "has no run.json")
    assert "removed ghost" in cli.ok("runs", "rm", "ghost", "--yes").stderr
    assert not ghost.exists()


def test_runs_rm_names_the_children_and_keeps_the_run_on_no(pipeline):
    refused = pipeline("runs", "rm", "ar-base", input="n\n")
    assert refused.exit_code == 1
    assert "warning: run 'ar-base' is the parent of ar-chat, dlm-base" in refused.stderr
    assert "kept run 'ar-base'" in refused.stderr
    assert (pipeline.home / "runs/ar-base/run.json").is_file()


def test_a_start_killed_before_run_json_is_started_again(cli):
    (cli.home / "runs/again").mkdir(parents=True)
    started = cli.ok(*TRAIN, "--run-name", "again")
    assert "removed the folder of run 'again'" in started.stderr
    assert (cli.home / "runs/again/checkpoints/step-0000002").is_dir()
