"""`llada plot`: where the figure goes, damaged metrics.jsonl files, and plotting a sampling trace.

The figures themselves are tested beside figures/curves.py and figures/trace.py, the text chart
beside cli/text_chart.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.figures.trace import read_trace
from llada_cli.engine.runs.record import RunInfo
from tests.cli.test_runs import loads_no_torch
from tests.engine.figures.test_curves import steps
from tests.engine.figures.test_trace import synthetic_trace

PNG = b"\x89PNG\r\n\x1a\n"


def make_run(home: Path, name: str, kind: str, metrics: list[dict] | bytes) -> Path:
    folder = home / "runs" / name
    folder.mkdir(parents=True)
    RunInfo(name, kind, "pretrain", ModelConfig(), 0).save(folder / "run.json")
    text = metrics if isinstance(metrics, bytes) else "".join(json.dumps(r) + "\n" for r in metrics).encode()
    (folder / "metrics.jsonl").write_bytes(text)
    return folder


@pytest.fixture
def two_runs(cli):
    make_run(cli.home, "a", "ar", steps([5 - 0.1 * i for i in range(30)]))
    make_run(cli.home, "b", "diffusion", steps([8 - 0.2 * i for i in range(30)]))
    return cli


def one_line_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


# ---------------------------------------------------------------------------------------------
# where the figure goes


def test_plot_writes_png_in_the_current_folder(pipeline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = pipeline.ok("plot", "ar-base", "dlm-base")
    png = tmp_path / "loss-ar-base-dlm-base.png"
    assert result.stdout.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (pipeline.home / "runs/ar-base/loss.png").exists()


def test_without_out_the_figure_goes_to_the_current_folder(two_runs, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = two_runs.ok("plot", "a", "b", columns=80)
    assert result.stdout.strip() == str(work / "loss-a-b.png")
    assert (work / "loss-a-b.png").read_bytes()[:8] == PNG
    assert not list((two_runs.home / "runs").rglob("*.png"))


def test_out_with_a_suffix_matplotlib_cannot_write_is_refused(two_runs, tmp_path):
    message = one_line_error(two_runs("plot", "a", "b", "--out", str(tmp_path / "x.txt")), 2)
    assert message.startswith(f"--out {tmp_path / 'x.txt'}: cannot write .txt figures")
    assert ".png" in message and ".pdf" in message and ".svg" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_out_a_folder_gets_the_default_name_and_other_formats_work(two_runs, tmp_path):
    folder = tmp_path / "figures"
    folder.mkdir()
    assert two_runs.ok("plot", "a", "b", "--out", str(folder)).stdout.strip() == str(folder / "loss-a-b.png")
    assert (folder / "loss-a-b.png").read_bytes()[:8] == PNG
    pdf = folder / "curves.pdf"
    two_runs.ok("plot", "a", "--metric", "lr", "--out", str(pdf))
    assert pdf.read_bytes()[:5] == b"%PDF-" and sorted(p.name for p in folder.iterdir()) == [
        "curves.pdf",
        "loss-a-b.png",
    ]


def test_out_ending_in_a_separator_is_a_folder_made_with_its_parents(two_runs, tmp_path):
    folder = tmp_path / "new" / "figures"
    printed = two_runs.ok("plot", "a", "b", "--out", f"{folder}/").stdout.strip()
    assert printed == str(folder / "loss-a-b.png") and (folder / "loss-a-b.png").read_bytes()[:8] == PNG
    deeper = tmp_path / "other" / "deeper" / "curves.svg"  # a file's missing folders are made too
    assert two_runs.ok("plot", "a", "--out", str(deeper)).stdout.strip() == str(deeper)
    message = one_line_error(two_runs("plot", "a", "--out", str(tmp_path / "missing")), 2)
    assert message.endswith("or a folder (end it with / to make one)")
    assert not (tmp_path / "missing").exists()


def test_an_unwritable_out_is_one_line_naming_the_file_not_a_temporary_one(two_runs, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    message = one_line_error(two_runs("plot", "a", "--out", str(blocker / "loss.png")), 1)
    assert message == f"cannot write {blocker / 'loss.png'}: {blocker} is a file, not a folder"


def test_plot_text_loads_no_torch(two_runs):
    loads_no_torch(two_runs.home, "plot", "a", "b", "--text")


# ---------------------------------------------------------------------------------------------
# damaged metrics.jsonl


GOOD = b'{"step": 1, "loss": 3.0}\n'


def test_a_truncated_last_line_is_a_record_being_written_and_is_skipped(cli, tmp_path):
    make_run(cli.home, "a", "ar", GOOD + b'{"step": 2, "loss": 2.5}\n{"step": 3, "lo')
    cli.ok("plot", "a", "--out", str(tmp_path / "a.png"))
    text = cli.ok("plot", "a", "--text", columns=80).stdout
    assert text.count("*") == 3  # two points and the key's marker


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"[1, 2]", "an array, not a JSON object"),
        (b"5", "a number, not a JSON object"),
        (b'{"step": 2, "loss": \xff\xfe}', "not UTF-8 text"),
        (b'{"step": 2, "lo', "invalid JSON"),
    ],
)
def test_a_corrupt_line_before_the_last_is_one_line_naming_it(cli, tmp_path, line, problem):
    make_run(cli.home, "a", "ar", GOOD + line + b"\n" + GOOD.replace(b"1", b"3"))
    message = one_line_error(cli("plot", "a", "--out", str(tmp_path / "a.png")), 1)
    assert message.startswith(f"a/metrics.jsonl line 2: {problem}")
    assert not (tmp_path / "a.png").exists()


# ---------------------------------------------------------------------------------------------
# the sampling trace


def test_plot_trace_options_and_bad_paths_are_one_line(cli, tmp_path):
    path = tmp_path / "t.jsonl"
    trace = synthetic_trace()
    path.write_text("".join(json.dumps(r) + "\n" for r in [trace.header, *trace.events]))
    assert read_trace(path).header == trace.header
    png = cli.ok("plot", "--trace", str(path), "--prompts", "2", "--out", str(tmp_path)).stdout.strip()
    assert png == str(tmp_path / "t.png") and Path(png).read_bytes()[:8] == PNG
    assert "--prompts 3: the trace has prompts 1-2" in one_line_error(
        cli("plot", "--trace", str(path), "--prompts", "3", "--out", str(tmp_path / "u.png")), 2
    )
    assert "cannot write .txt" in one_line_error(cli("plot", "--trace", str(path), "--out", "x.txt"), 2)
    assert "is a folder" in one_line_error(cli("plot", "--trace", str(tmp_path)), 2)
    assert not (tmp_path / "u.png").exists() and not Path("x.txt").exists()


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ("1-99999999999999999999", "the trace has prompts 1-2"),  # refused before a range of it is made
        ("1-" + "9" * 5000, "the trace has prompts 1-2"),
        ("\u00b2", "give prompt numbers from 1"),  # a digit to str.isdigit, not to int()
        ("1-\u00b3", "give prompt numbers from 1"),
    ],
)
def test_prompt_numbers_are_ascii_and_within_the_trace(cli, tmp_path, prompts, message):
    path = tmp_path / "t.jsonl"
    trace = synthetic_trace()
    path.write_text("".join(json.dumps(r) + "\n" for r in [trace.header, *trace.events]))
    result = cli("plot", "--trace", str(path), "--prompts", prompts, "--out", str(tmp_path / "u.png"))
    assert message in one_line_error(result, 2)
    assert not (tmp_path / "u.png").exists()
