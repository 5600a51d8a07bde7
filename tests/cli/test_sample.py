"""`llada sample`: its JSON report, the sampling trace, settings taken from the run, --trace refusals,
prompts from stdin, --live at its frame rate, and a batch's figures given once."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from llada_cli.cli import sample as sample_command
from llada_cli.cli.live import LiveDenoising
from llada_cli.engine.figures.trace import read_trace, trace_figure
from tests.cli.test_live import FakeTime, terminal
from tests.cli.test_plot import one_line_error


def test_sample_json_reports_forward_passes(pipeline):
    result = pipeline.ok(
        "sample", "dlm-chat", "--prompt", "Hello", "--chat", "--max-new-tokens", "8", "--steps", "8", "--json"
    )
    doc = json.loads(result.stdout)
    assert doc["kind"] == "diffusion" and len(doc["results"]) == 1
    first = doc["results"][0]
    assert first["forward_passes"] <= 8 and first["new_tokens"] <= 8
    ar = json.loads(
        pipeline.ok(
            "sample", "ar-chat", "-p", "Hi", "-p", "Hello there", "--max-new-tokens", "5", "--jsonl"
        ).stdout.splitlines()[1]
    )
    assert ar["prompt"] == "Hello there" and ar["new_tokens"] <= 5


def test_a_block_diffusion_run_samples_block_causally_in_its_last_block_size(cli):
    from tests.conftest import MICRO

    args = ["pretrain", "diffusion", *MICRO, "--use-block-curriculum", "--max-steps", "4"]
    cli.ok(*args, "--wsd-block-sizes-down", "16", "--run-name", "blocks")
    cli.ok("pretrain", "diffusion", *MICRO, "--max-steps", "4", "--run-name", "plain")

    def settings(run: str, *flags: str) -> dict:
        result = cli.ok("sample", run, "-p", "The capital of Ninaria is", "--json", *flags)
        return json.loads(result.stdout)

    blocks = settings("blocks")
    used = blocks["settings"]
    assert (used["method"], used["attention"], used["block_length"], used["cache"]) == (
        "semi_ar_origin", "block_causal", 16, "prefix"
    )  # fmt: skip
    assert used["gen_length"] % 16 == 0 and used["threshold"] == 0.9
    uncached = settings("blocks", "--cache", "none")
    assert [r["token_ids"] for r in uncached["results"]] == [r["token_ids"] for r in blocks["results"]]
    assert settings("plain")["settings"]["attention"] == "bidirectional"


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


def test_sample_trace_into_a_folder_is_refused_before_loading_anything(cli, tmp_path):
    message = one_line_error(cli("sample", "any-run", "--prompt", "Hi", "--trace", str(tmp_path)), 2)
    assert message == f"--trace {tmp_path} is a folder; give a file, e.g. {tmp_path / 'trace.jsonl'}"


def test_a_prompts_file_with_a_byte_order_mark_gives_the_prompts_without_it(pipeline, tmp_path):
    for name, text in (("prompts.txt", "Hi\r\nWho are you?\n"), ("prompts.jsonl", '{"prompt": "Hi"}\n')):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8-sig", newline="")
        result = pipeline.ok(
            "sample", "ar-chat", "--prompts-file", str(path), "--max-new-tokens", "2", "--jsonl"
        )
        prompts = [json.loads(line)["prompt"] for line in result.stdout.splitlines()]
        assert prompts == ["Hi", "Who are you?"][: len(prompts)] and len(prompts) == text.count("\n")


def test_prompts_file_dash_reads_one_prompt_per_line_from_stdin(pipeline):
    result = pipeline.ok(
        "sample", "ar-chat", "--prompts-file", "-", "--max-new-tokens", "2", "--jsonl",
        input="Hi\n\nWho are you?\n",
    )  # fmt: skip
    assert [json.loads(line)["prompt"] for line in result.stdout.splitlines()] == ["Hi", "Who are you?"]


def watched(monkeypatch) -> FakeTime:
    """`sample --live` drawn on a terminal with a clock that only moves when waited on."""
    time = FakeTime()
    view = functools.partial(LiveDenoising, console=terminal(), clock=time.clock, sleep=time.sleep)
    monkeypatch.setattr(sample_command, "LiveDenoising", view)
    return time


def test_live_holds_each_denoising_step_one_over_fps_seconds(pipeline, monkeypatch):
    time = watched(monkeypatch)
    flags = ("--gen-length", "8", "--steps", "4", "--live", "--live-fps", "4", "--json")
    result = pipeline.ok("sample", "dlm-chat", "-p", "Hi", *flags)
    assert json.loads(result.stdout)["results"][0]["text"] is not None
    assert len(time.waits) >= 2 and time.waits == [0.25] * len(time.waits)  # one per step, none skipped


def test_live_on_an_ar_run_streams_its_tokens(pipeline, monkeypatch):
    time = watched(monkeypatch)
    result = pipeline.ok("sample", "ar-chat", "-p", "Hi", "--max-new-tokens", "4", "--live")
    assert 1 <= len(time.waits) <= 4 and result.stdout.strip()  # a frame a token, at most 4 tokens
    assert time.waits == [0.125] * len(time.waits)  # the default 8 frames a second


def test_a_batch_gives_each_answer_its_counts_and_the_batch_time_once_in_the_singular(pipeline):
    result = pipeline.ok("sample", "ar-chat", "-p", "Hi", "-p", "Hello there", "--max-new-tokens", "1")
    counts = [line for line in result.stderr.splitlines() if "forward" in line]
    assert counts[:2] == ["1 new token, 1 forward pass"] * 2  # no time or rate: the batch shares them
    assert len(counts) == 3 and re.fullmatch(
        r"2 prompts: 2 new tokens, 1 forward pass \(2\.00 tokens/forward\), \d+\.\d\ds, \d+\.\d tokens/s",
        counts[2],
    ), counts


def test_infill_fills_the_slots_of_each_text_and_refuses_what_does_not_apply(pipeline):
    doc = json.loads(
        pipeline.ok(
            "sample", "dlm-chat", "--infill", "Hello [MASK:3] there.", "--infill", "It [MASK] here.", "--json"
        ).stdout
    )
    first, second = doc["results"]
    assert first["prompt"] == "Hello [MASK:3] there." and len(first["token_ids"]) == 3
    assert first["text"].startswith("Hello") and first["text"].endswith("there.")
    assert len(second["token_ids"]) == 1 and doc["settings"]["infill"] is True
    for args, message in (
        (["ar-chat", "--infill", "Hi [MASK]"], "infilling needs a diffusion run"),
        (["dlm-chat", "--infill", "Hi [MASK]", "--prompt", "x"], "drop --prompt"),
        (["dlm-chat", "--infill", "Hi [MASK]", "--chat"], "not to --infill"),
        (["dlm-chat", "--infill", "Hi [MASK]", "--cache", "prefix"], "not for filling slots"),
        (["dlm-chat", "--infill", "Hi there"], "no slot to fill"),
    ):
        result = pipeline("sample", *args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
