"""run_stage (training/stages.py): what a run records and says first, in either dtype."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest

from tests.conftest import MICRO


def test_pipeline_writes_runs_with_lineage(pipeline):
    runs = pipeline.home / "runs"
    ar, dlm = (
        json.loads((runs / "ar-base/run.json").read_text()),
        json.loads((runs / "dlm-base/run.json").read_text()),
    )
    assert (ar["kind"], ar["stage"], ar["status"]) == ("ar", "pretrain", "completed")
    assert (dlm["kind"], dlm["parent"], dlm["model"]["causal"]) == ("diffusion", "ar-base@6", False)
    # the vocabulary grows by exactly the mask token
    assert dlm["model"]["vocab_size"] == ar["model"]["vocab_size"] + 1
    tokenizer = json.loads((runs / "dlm-base/tokenizer.json").read_text())
    assert any(t["content"] == "<|mask|>" for t in tokenizer["added_tokens"])
    chat = json.loads((runs / "dlm-chat/run.json").read_text())
    assert (chat["kind"], chat["stage"], chat["parent"]) == ("diffusion", "sft", "dlm-base@6")
    metrics = pipeline.metrics("ar-base")
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(m["loss"]) for m in metrics)
    assert "val_loss" in metrics[-1] and metrics[-1]["tokens"] == 6 * 4 * 64
    assert (runs / "ar-base/latest").read_text().strip() == "step-0000006"


def test_a_run_says_what_it_is_first(cli):
    result = cli.ok("pretrain", "ar", *MICRO, "--max-steps", "2", "--run-name", "said")
    first, data, warning = result.stderr.splitlines()[:3]
    assert re.fullmatch(
        r"said: AR pretraining, preset tiny, 0\.\dM parameters; cpu (fp32|bf16), \d+ threads?; 2 steps", first
    ), first
    assert data.startswith("said: 4 rows a step (") and "train rows" in data
    assert "2 steps are too few to learn much" in warning
    sft = cli.ok("sft", "--base", "said", "--max-steps", "1", "--batch-size", "2", "--run-name", "chat")
    assert sft.stderr.startswith("chat: AR SFT of said, ")


def _avx2_forced_on_an_avx512_cpu() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return os.environ.get("ATEN_CPU_CAPABILITY") == "avx2" and " avx512f" in flags


# torch's CPU flash attention packs bf16 with AVX512 instructions wherever the CPU has them, and
# refuses to when ATEN_CPU_CAPABILITY asks for less ("pack_vnni2 is only supported when avx512 is
# supported"); a real AVX2 CPU never takes that path, and fp32 runs either way
BF16 = pytest.param(
    "bf16",
    marks=pytest.mark.skipif(
        _avx2_forced_on_an_avx512_cpu(), reason="torch's bf16 attention under a forced avx2 capability"
    ),
)


@pytest.mark.parametrize("dtype", ["fp32", BF16])
def test_training_through_the_cli_works_in_either_dtype(cli, dtype):
    # --dtype auto picks bf16 on AVX512-BF16 CPUs and fp32 elsewhere: both paths must train
    cli.ok("pretrain", "diffusion", *MICRO, "--max-steps", "2", "--dtype", dtype, "--run-name", "base")
    cli.ok(
        "sft",
        "--base",
        "base",
        "--batch-size",
        "4",
        "--max-steps",
        "2",
        "--dtype",
        dtype,
        "--run-name",
        "chat",
    )
    for run in ("base", "chat"):
        info = json.loads((cli.home / "runs" / run / "run.json").read_text())
        assert info["status"] == "completed" and info["train"]["dtype"] == dtype
        assert all(math.isfinite(m["loss"]) for m in cli.metrics(run) if "loss" in m)


@pytest.mark.parametrize("resume", [False, True], ids=["new", "resumed"])
def test_run_json_is_written_once_before_the_first_step(cli, monkeypatch, resume):
    from llada_cli.engine.runs.record import RunInfo
    from llada_cli.engine.training.trainer import Trainer

    args = ("pretrain", "ar", *MICRO, "--dtype", "fp32", "--run-name", "once")
    if resume:
        cli.ok(*args, "--max-steps", "2")
    seen: list[str] = []
    save, step = RunInfo.save, Trainer._train_step

    def saving(info, path):
        seen.append(f"run.json {info.status}")
        return save(info, path)

    def stepping(trainer):
        seen.append("step")
        return step(trainer)

    monkeypatch.setattr(RunInfo, "save", saving)
    monkeypatch.setattr(Trainer, "_train_step", stepping)
    cli.ok(*args, "--max-steps", "4", *(["--resume"] if resume else []))
    assert seen[: seen.index("step")] == ["run.json running"]
