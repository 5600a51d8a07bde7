"""Training in several processes: data parallel over gloo on the CPU, started by --devices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import MICRO

STEPS = ["--max-steps", "3", "--dtype", "fp32", "--eval-every", "3"]


def llada(home, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LLADA_HOME", "RANK", "WORLD_SIZE")}
    command = [sys.executable, "-m", "llada_cli", "--home", str(home), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if result.returncode:
        Path("/tmp/ddp-failure.log").write_text(result.stderr)
    return result


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc): torchrun starts its workers in their own sessions."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [d for child in map(int, children) for d in (child, *descendants(child))]


def kill_after(home: Path, args: list[str], line: str) -> None:
    """Start `llada ARGS` and kill -9 it and every process it started once it prints `line`."""
    env = {k: v for k, v in os.environ.items() if k not in ("LLADA_HOME", "RANK", "WORLD_SIZE")}
    command = [sys.executable, "-m", "llada_cli", "--home", str(home), *args]
    killed = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    for printed in killed.stderr:  # progress lines: torchrun's workers are in their own sessions
        if line in printed:
            for pid in [killed.pid, *descendants(killed.pid)]:
                os.kill(pid, signal.SIGKILL)
            break
    killed.wait()
    assert killed.returncode != 0


@pytest.mark.parametrize("sharding", [[], ["--fsdp"]], ids=["ddp", "fsdp"])
def test_two_processes_train_the_weights_one_process_trains(cli, sharding):
    cli.ok("pretrain", "ar", *MICRO, *STEPS, "--batch-size", "8", "--run-name", "one")
    tokenizer = str(cli.home / "runs" / "one" / "tokenizer.json")
    two = llada(
        cli.home, "pretrain", "ar", *MICRO, *STEPS, "--tokenizer", tokenizer, *sharding,
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


def test_a_killed_two_process_run_resumes_bit_identical(cli):
    args = [
        "--threads",
        "1",
        "pretrain",
        "ar",
        *MICRO,
        "--dtype",
        "fp32",
        "--max-steps",
        "12",
        "--save-every",
        "3",
    ]
    args += ["--eval-every", "3", "--devices", "2"]
    assert llada(cli.home, *args, "--run-name", "straight").returncode == 0
    kill_after(cli.home, [*args, "--run-name", "killed"], "step 4/12")
    run = cli.home / "runs" / "killed"
    assert (run / "checkpoints" / "step-0000003").is_dir() and not (
        run / "checkpoints" / "step-0000006"
    ).exists()
    resumed = llada(cli.home, *args, "--run-name", "killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr[:3000]
    straight = load_file(cli.home / "runs/straight/checkpoints/step-0000012/model.safetensors")
    again = load_file(run / "checkpoints/step-0000012/model.safetensors")
    assert all(torch.equal(straight[k], again[k]) for k in straight)
    loss = [(m["step"], m.get("loss")) for m in cli.metrics("killed")]
    assert loss == [(m["step"], m.get("loss")) for m in cli.metrics("straight")]


def test_a_sharded_two_process_run_resumes_in_one_process(cli):
    args = ["--threads", "1", "pretrain", "ar", *MICRO, "--dtype", "fp32", "--max-steps", "6", "--fsdp"]
    args += ["--save-every", "3", "--global-batch-size", "8"]
    assert llada(cli.home, *args, "--devices", "2", "--run-name", "straight").returncode == 0
    kill_after(cli.home, [*args, "--devices", "2", "--run-name", "moved"], "step 4/6")

    resumed = llada(cli.home, *args, "--devices", "1", "--run-name", "moved", "--resume")

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = load_file(cli.home / "runs/straight/checkpoints/step-0000006/model.safetensors")
    moved = load_file(cli.home / "runs/moved/checkpoints/step-0000006/model.safetensors")
    assert max((straight[k] - moved[k]).abs().max().item() for k in straight) < 1e-5


def test_a_failure_in_the_processes_ends_them_all_with_one_line(cli):
    args = ["pretrain", "ar", *MICRO, *STEPS, "--devices", "2", "--run-name", "broken"]
    assert llada(cli.home, *args).returncode == 0
    run = cli.home / "runs" / "broken"
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "failed"}))
    (run / "checkpoints" / "step-0000003" / "trainer.pt").write_bytes(b"not a checkpoint")

    resumed = llada(cli.home, *args, "--resume")

    assert resumed.returncode == 1
    lines = resumed.stderr.strip().splitlines()
    damaged = run / "checkpoints" / "step-0000003"
    assert lines[-1] == (
        f"error: cannot read {damaged / 'trainer.pt'} (truncated or not a torch file); the checkpoint "
        f"is damaged: remove {damaged} to resume from the checkpoint before it"
    )
    assert sum(line.startswith("error:") for line in lines) == 1  # every process fails alike: once
    assert not any("Traceback" in line or "torchrun" in line or line.startswith("W1") for line in lines)
