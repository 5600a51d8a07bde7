"""CLI features beyond the basic pipeline: schedules, early stopping, seed command lines, traces, API."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

from llada_cli import api
from llada_cli.cli.completion import SHELLS, completion_script
from llada_cli.cli.live import PLACEHOLDER, LiveDenoising, readable
from llada_cli.engine.figures.trace import read_trace, trace_figure
from llada_cli.engine.runtime.device import idle_cores, running_elsewhere
from tests.conftest import MICRO

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_completions_are_current():
    for shell in SHELLS:
        shipped = (ROOT / "completions" / f"llada.{shell}").read_text(encoding="utf-8")
        assert shipped == completion_script(shell), (
            f"completions/llada.{shell} is stale: run python -m llada_cli.cli.completion"
        )


def test_run_names_complete_from_the_registry(pipeline):
    env = {
        "_LLADA_COMPLETE": "complete_bash",
        "COMP_WORDS": "llada sample dlm",
        "COMP_CWORD": "2",
        "LLADA_HOME": str(pipeline.home),
    }
    result = subprocess.run(
        [sys.executable, "-m", "llada_cli"], env=env, capture_output=True, text=True, check=False
    )
    assert result.stdout.split() == ["dlm-base", "dlm-chat"]


def test_python_dash_m_runs_the_app():
    result = subprocess.run([sys.executable, "-m", "llada_cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "pretrain" in result.stdout


def test_block_curriculum_logs_block_size_and_validates_sizes(cli):
    args = ["pretrain", "diffusion", *MICRO, "--use-block-curriculum", "--max-steps", "10"]
    bad = cli(*args, "--block-sizes-up", "1,48,64", "--run-name", "bad")
    assert bad.exit_code == 2 and "48 does not divide --seq-len 64" in bad.stderr
    assert not (cli.home / "runs/bad").exists()
    cli.ok(
        *args,
        "--block-sizes-up",
        "1,8,64",
        "--wsd-block-sizes-down",
        "32,16",
        "--use-doc-attention-mask",
        "--time-weighted-loss",
        "--noise-schedule",
        "cosine",
        "--run-name",
        "wsd",
    )
    sizes = [m["block_size"] for m in cli.metrics("wsd")]
    # warmup 30% over (1, 8, 64), stable 50% at 64, decay 20% over (32, 16); step s trains at s/10
    assert sizes == [1.0, 8.0, 64.0, 64.0, 64.0, 64.0, 64.0, 64.0, 32.0, 16.0]


def test_early_stopping_ends_cleanly_and_keeps_the_best(cli):
    cli.ok(
        "pretrain",
        "ar",
        *MICRO,
        "--max-steps",
        "20",
        "--eval-every",
        "1",
        "--learning-rate",
        "0",
        "--early-stop-patience",
        "2",
        "--early-stop-min-delta",
        "0.001",
        "--keep-checkpoints",
        "1",
        "--run-name",
        "es",
    )
    info = json.loads((cli.home / "runs/es/run.json").read_text())
    assert info["status"] == "early_stopped" and info["step"] == 3 and info["best"]["step"] == 1
    steps = sorted(int(p.name.split("-")[1]) for p in (cli.home / "runs/es/checkpoints").iterdir())
    assert steps == [1, 3]  # the best and the newest


# The seed's command lines, flag for flag. CI swaps the size numbers for small ones; the slow
# variant runs them at Nano-LLaDA's own size (512 hidden, 8 layers, batch 96).
FULL = {"hidden": "512", "layers": "8", "heads": "8", "seq": "256", "batch": "96", "sft_seq": "512"}
SMALL = {"hidden": "64", "layers": "2", "heads": "8", "seq": "32", "batch": "8", "sft_seq": "64"}


@pytest.mark.parametrize("size", [SMALL, pytest.param(FULL, marks=pytest.mark.slow)], ids=["small", "full"])
def test_nano_llada_command_lines_run_as_written(cli, tmp_path, size):
    data = tmp_path / "pretrain_hq.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": f"第{i}段。 Paragraph {i} tells a short story."}) + "\n" for i in range(400)
        ),
        encoding="utf-8",
    )
    sft = tmp_path / "sft_mini_512.jsonl"
    turns = (
        {"conversations": [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": f"A{i}."}]}
        for i in range(20)
    )
    sft.write_text("".join(json.dumps(t) + "\n" for t in turns), encoding="utf-8")
    shape = [
        "--hidden-size",
        size["hidden"],
        "--num-hidden-layers",
        size["layers"],
        "--num-attention-heads",
        size["heads"],
    ]
    cli.ok(
        "pretrain",
        "ar",
        "--data",
        str(data),
        "--jsonl-field",
        "text",
        "--run-name",
        "minimind_pretrain",
        *shape,
        "--max-seq-len",
        size["seq"],
        "--epochs",
        "1",
        "--batch-size",
        size["batch"],
        "--vocab-size",
        "400",
        "--eval-batches",
        "1",
    )
    cli.ok(
        "pretrain",
        "diffusion",
        "--data",
        str(data),
        "--jsonl-field",
        "text",
        "--seq-len",
        size["seq"],
        *shape,
        "--inference-rope-scaling",
        "--learning-rate",
        "4e-4",
        "--lr-schedule",
        "wsd",
        "--warmup-steps",
        "2000",
        "--lr-stable-ratio",
        "0.4",
        "--min-lr-ratio",
        "0.025",
        "--mask-schedule",
        "iid_t",
        "--variable-length-prob",
        "0.01",
        "--iid-mask-eps",
        "1e-3",
        "--weight-decay",
        "0.1",
        "--init-from",
        "minimind_pretrain",
        "--run-name",
        "diffusion_from_ar_eq3",
        "--early-stop-patience",
        "5",
        "--early-stop-min-delta",
        "0.001",
        "--max-iters",
        "2",
        "--batch-size",
        size["batch"],
        "--eval-batches",
        "1",
    )
    for base, run in (("minimind_pretrain", "minimind_sft"), ("diffusion_from_ar_eq3", "diffusion_sft")):
        cli.ok(
            "sft",
            "--data",
            str(sft),
            "--load-from",
            base,
            "--run-name",
            run,
            "--max-seq-len",
            size["sft_seq"],
            "--batch-size",
            size["batch"],
            "--epochs",
            "1",
            "--eval-batches",
            "1",
        )
    info = json.loads((cli.home / "runs/diffusion_sft/run.json").read_text())
    assert (info["kind"], info["status"], info["parent"]) == (
        "diffusion",
        "completed",
        "diffusion_from_ar_eq3@2",
    )
    assert info["model"]["hidden_size"] == int(size["hidden"]) and info["model"]["rope_scaling"] == 16.0
    assert json.loads((cli.home / "runs/minimind_sft/run.json").read_text())["kind"] == "ar"


def test_trace_and_heatmap(pipeline, tmp_path):
    trace = tmp_path / "trace.jsonl"
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Hi"}\n\n{"prompt": "Who are you?"}\n')
    doc = json.loads(
        pipeline.ok(
            "sample",
            "dlm-chat",
            "--prompts-file",
            str(prompts),
            "--gen-length",
            "8",
            "--steps",
            "8",
            "--trace",
            str(trace),
            "--json",
        ).stdout
    )
    assert [r["prompt"] for r in doc["results"]] == ["Hi", "Who are you?"]
    header, *events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert (header["kind"], header["run"]) == ("header", "dlm-chat@4")
    assert header["prompts"] == ["Hi", "Who are you?"]
    assert header["settings"]["gen_length"] == 8 and header["settings"]["steps"] == 8
    first_row = [e for e in events if e["row"] == 0 and e["kind"] == "commit"]
    positions = [e["position"] for e in first_row]
    assert first_row and len(set(positions)) == len(positions) and all(0 <= p < 8 for p in positions)
    assert all(0 <= e["step"] < 8 for e in events)
    png = pipeline.ok("plot", "--trace", str(trace), "--out", str(tmp_path / "t.png")).stdout.strip()
    assert Path(png).read_bytes()[:4] == b"\x89PNG"
    figure = trace_figure(read_trace(trace))  # one panel per prompt of the batch
    titles = [axis.get_title(loc="left") for axis in figure.axes]
    assert titles[:2] == ["prompt 1 of 2: Hi", "prompt 2 of 2: Who are you?"]
    assert "8 steps, gen length 8, block length 8" in figure.get_suptitle()


def test_live_view_shows_placeholders_for_masked_slots(pipeline):
    model = api.load("dlm-chat", home=pipeline.home, device="cpu")
    tokenizer = model.tokenizer
    region = torch.tensor([[*tokenizer.encode("Hi"), tokenizer.mask_id, tokenizer.mask_id]])
    text = LiveDenoising(tokenizer, enabled=False).render(3, region).plain
    assert text == "step    3  Hi" + PLACEHOLDER * 2
    # end-of-text padding shows as nothing, and a character cut by a mask is never shown in half
    euro = tokenizer.encode("€")  # several byte-level tokens
    padded = [*tokenizer.encode("ok"), tokenizer.eos_id, tokenizer.eos_id]
    assert readable(tokenizer, padded) == "ok"
    assert "\ufffd" not in readable(tokenizer, [euro[0], tokenizer.mask_id, *euro[1:]])
    assert readable(tokenizer, euro) == "€"
    # a long answer wraps at the terminal's width instead of running off it
    long = torch.tensor([tokenizer.encode("word " * 60)])
    console = Console(width=80, file=io.StringIO())
    lines = console.render_lines(LiveDenoising(tokenizer, enabled=False).render(1, long), console.options)
    assert len(lines) > 1 and all(sum(len(seg.text) for seg in line) <= 80 for line in lines)


def test_api_generate_logits_and_score(pipeline):
    ar = api.load("ar-chat", home=pipeline.home, device="cpu")
    dlm = api.load("dlm-chat", home=pipeline.home, device="cpu")
    assert (ar.kind, dlm.kind) == ("ar", "diffusion")
    [result] = dlm.generate("Hi", chat=True, gen_length=8, steps=8)
    assert (
        result.forward_passes <= 8 and result.tokens_per_forward == result.new_tokens / result.forward_passes
    )
    ids = torch.tensor([ar.tokenizer.encode("The capital")])
    assert ar.logits(ids).shape == (1, ids.shape[1], ar.network.config.vocab_size)
    # exact AR log-likelihood = sum of next-token log-probabilities
    prompt, answer = ar.tokenizer.encode("The capital"), ar.tokenizer.encode(" is")
    full = torch.tensor([prompt + answer])
    logprobs = ar.logits(full[:, :-1]).log_softmax(-1)[0, len(prompt) - 1 :]
    expected = logprobs.gather(1, full[0, len(prompt) :, None]).sum().item()
    assert abs(ar.score("The capital", " is") - expected) < 1e-4
    assert dlm.score("The capital", " is", mc_num=8) < 0


def test_threads_are_set_and_shown_with_verbose(pipeline, monkeypatch):
    result = pipeline("--threads", "1", "-v", "sample", "ar-chat", "-p", "hi", "--max-new-tokens", "2")
    assert result.exit_code == 0 and "torch threads: 1" in result.stderr
    monkeypatch.setenv("LLADA_THREADS", "2")
    result = pipeline("-v", "sample", "ar-chat", "-p", "hi", "--max-new-tokens", "2")
    assert "torch threads: 2" in result.stderr
    assert pipeline("--threads", "0", "sample", "ar-chat", "-p", "hi").exit_code == 2


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


def test_logs_off_a_terminal_give_one_line_per_step_with_validation_and_time(cli):
    args = [*MICRO, "--log-every", "2", "--eval-every", "3", "--max-steps", "6", "--run-name", "logs"]
    result = cli.ok("-v", "pretrain", "ar", *args)
    lines = [line for line in result.stderr.splitlines() if line.startswith("logs step ")]
    assert [line.split()[2] for line in lines] == ["2/6", "3/6", "4/6", "6/6"]  # log or eval steps, once each
    assert ["val " in line for line in lines] == [False, True, False, True]
    assert all(" elapsed, " in line and line.endswith(" left") for line in lines)
