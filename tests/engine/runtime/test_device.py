"""The device (runtime/device.py): --compile gives the same numbers as eager, and one line (not a
traceback) where it cannot compile; default threads leave busy cores alone; fp16 is for CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.runtime.device import compile_blocks, idle_cores, running_elsewhere
from tests.conftest import MICRO


def broken_compile(*args, **kwargs):
    raise RuntimeError("Compiler: cc not found\n(a long backtrace)")


def test_a_machine_that_cannot_compile_trains_eagerly_and_says_so_in_one_line(cli, monkeypatch):
    monkeypatch.setattr(torch, "compile", broken_compile)
    result = cli.ok("pretrain", "ar", *MICRO, "--max-steps", "2", "--compile", "-n", "c")
    assert "c: torch.compile is unavailable here (Compiler: cc not found); running without it" in (
        result.output
    )
    assert "backtrace" not in result.output
    assert cli.metrics("c")[-1]["step"] == 2


def test_sampling_falls_back_the_same_way(cli, monkeypatch):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "-n", "c")
    monkeypatch.setattr(torch, "compile", broken_compile)
    result = cli.ok("sample", "c", "-p", "a", "--max-new-tokens", "2", "--compile")
    assert "warning: torch.compile is unavailable here (Compiler: cc not found)" in result.output


@pytest.mark.slow
def test_compiled_blocks_give_the_eager_logits_and_keep_the_weight_names():
    torch.manual_seed(0)
    model = Transformer(
        ModelConfig(vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
    )
    ids = torch.randint(0, 32, (2, 16))
    names = list(model.state_dict())
    eager = model(ids)

    assert compile_blocks(model) is None
    torch.testing.assert_close(model(ids), eager, atol=1e-5, rtol=1e-5)
    assert list(model.state_dict()) == names


@pytest.mark.parametrize(("busy", "expected"), [(0, 2), (1, 1), (2, 1), (7, 1)])
def test_default_threads_leave_busy_cores_alone(monkeypatch, busy, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert idle_cores(busy) == expected


def test_running_elsewhere_reads_the_runnable_count(monkeypatch, tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("1.90 1.20 0.80 3/412 9999\n")  # 3 runnable: this process and 2 others
    real_path = Path

    def fake_path(name: str):
        return loadavg if name == "/proc/loadavg" else real_path(name)

    monkeypatch.setattr("llada_cli.engine.runtime.device.Path", fake_path)
    assert running_elsewhere(samples=1) == 2


def test_fp16_is_for_cuda_and_auto_never_picks_it_on_the_cpu():
    from llada_cli.engine.errors import UsageError
    from llada_cli.engine.runtime.device import resolve_dtype

    cpu = torch.device("cpu")
    with pytest.raises(UsageError, match="`dtype` fp16 is for CUDA GPUs"):
        resolve_dtype("fp16", cpu)
    assert resolve_dtype("auto", cpu) in ("bf16", "fp32")
    assert resolve_dtype("fp32", cpu) == "fp32"
