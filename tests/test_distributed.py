"""Training in several processes: data parallel over gloo on the CPU, started by --devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from tests.conftest import MICRO

STEPS = ["--max-steps", "3", "--dtype", "fp32", "--eval-every", "3"]


def llada(home, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LLADA_HOME", "RANK", "WORLD_SIZE")}
    command = [sys.executable, "-m", "llada_cli", "--home", str(home), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_two_processes_train_the_weights_one_process_trains(cli):
    cli.ok("pretrain", "ar", *MICRO, *STEPS, "--batch-size", "8", "--run-name", "one")
    tokenizer = str(cli.home / "runs" / "one" / "tokenizer.json")
    two = llada(
        cli.home, "pretrain", "ar", *MICRO, *STEPS, "--tokenizer", tokenizer,
        "--batch-size", "4", "--global-batch-size", "8", "--devices", "2", "--run-name", "two",
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stderr.count("completed at step 3") == 1  # only the main process reports
    one_w = load_file(cli.home / "runs/one/checkpoints/step-0000003/model.safetensors")
    two_w = load_file(cli.home / "runs/two/checkpoints/step-0000003/model.safetensors")
    assert max((one_w[k] - two_w[k]).abs().max().item() for k in one_w) < 1e-5
    one_m, two_m = cli.metrics("one"), cli.metrics("two")
    assert [m["tokens"] for m in two_m] == [m["tokens"] for m in one_m]  # both processes' tokens count
    for a, b in zip(one_m, two_m, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)
    info = json.loads((cli.home / "runs/two/run.json").read_text())
    assert info["train"]["global_batch_size"] == 8 and info["status"] == "completed"


def test_a_global_batch_that_does_not_divide_is_refused(cli):
    result = cli("pretrain", "ar", *MICRO, "--global-batch-size", "6", "--run-name", "bad")
    assert result.exit_code == 2
    assert "--global-batch-size 6 is not a multiple of --batch-size 4 x 1 processes = 4" in result.stderr
    assert not (cli.home / "runs" / "bad").exists()
