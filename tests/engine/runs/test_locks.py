"""One process owns a run while it trains (runs/locks.py): other writers are refused, readers are not,
and a killed owner's lock is released.

What a killed start or overwrite leaves is tested beside registry.py and lifecycle.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.cli.test_errors import assert_one_line_error
from tests.conftest import MICRO, ROOT

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
        cwd=ROOT,
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
