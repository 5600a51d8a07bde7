"""One run folder (runs/folder.py): a checkpoint that cannot be written (a full disk) is one line
naming the step that is intact, and the run resumes from it."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MICRO

# bytes per file: run.json, metrics and the tokenizer fit; the weights (0.7 MB) do not, or they do and
# the trainer state (optimizer moments: 1.5 MB) does not
LIMITS = {"weights": 300_000, "trainer state": 1_000_000}


def limited_llada(home: Path, limit_bytes: int, *args: str) -> subprocess.CompletedProcess:
    """`llada ARGS` in a process that cannot write a file over LIMIT bytes: writes fail with EFBIG,
    as they fail with ENOSPC on a full disk (no root, no tmpfs needed)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = {k: v for k, v in os.environ.items() if k != "LLADA_HOME"}
    command = [sys.executable, "-m", "llada_cli", "--home", str(home), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, preexec_fn=limit)


@pytest.mark.parametrize("limit_bytes", LIMITS.values(), ids=LIMITS.keys())
def test_a_checkpoint_that_cannot_be_written_names_the_intact_step(cli, limit_bytes):
    train = ("pretrain", "ar", *MICRO, "--dtype", "fp32", "--save-every", "1", "--run-name", "full")
    cli.ok(*train, "--max-steps", "2")
    failed = limited_llada(cli.home, limit_bytes, *train, "--resume", "--max-steps", "4")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "error: cannot save the checkpoint of step 3: File too large; step 2 is intact" in failed.stderr
    run = cli.home / "runs" / "full"
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-0000001", "step-0000002"]
    assert not list(run.rglob("*.tmp")) and not list(run.rglob(".step-*"))
    cli.ok(*train, "--resume", "--max-steps", "4")
    assert json.loads((run / "run.json").read_text())["step"] == 4
