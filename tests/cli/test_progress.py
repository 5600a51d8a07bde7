"""Progress output (cli/progress.py): log lines off a terminal, a bar that fits the terminal,
tokenizing and import reports."""

from __future__ import annotations

import json

import pytest

from llada_cli.cli.progress import data_line
from tests.conftest import MICRO
from tests.engine.interchange.test_imported_runs import _files


def test_logs_off_a_terminal_give_one_line_per_step_with_validation_and_time(cli):
    args = [*MICRO, "--log-every", "2", "--eval-every", "3", "--max-steps", "6", "--run-name", "logs"]
    result = cli.ok("-v", "pretrain", "ar", *args)
    lines = [line for line in result.stderr.splitlines() if line.startswith("logs step ")]
    assert [line.split()[2] for line in lines] == ["2/6", "3/6", "4/6", "6/6"]  # log or eval steps, once each
    assert ["val " in line for line in lines] == [False, True, False, True]
    assert all(" elapsed, " in line and line.endswith(" left") for line in lines)


def test_a_run_of_one_step_and_one_row_says_so_in_the_singular(cli):
    args = [*MICRO, "--batch-size", "1", "--max-steps", "1", "--run-name", "one"]
    said = cli.ok("pretrain", "ar", *args).stderr
    assert "one: 1 row a step (" in said and "one: 1 step is too few to learn much" in said
    record = {"rows_per_step": 1, "rows": 1, "val_rows": 1, "seq_len": 1}
    assert data_line(record, 1) == "1 row a step (1 epoch) of 1 train row, 1 val row of 1 token"
    assert data_line(record | {"rows": 2, "val_rows": 2}, 3).startswith("1 row a step (1.5 epochs) of 2")


def test_tokenizing_a_file_reports_its_size_and_speed_once(cli, tmp_path):
    from tests.conftest import MICRO

    data = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"text": f"document {i} says the capital of Ninaria is Tidar."}) for i in range(3000)]
    data.write_text("\n".join(lines) + "\n")
    size_mb = data.stat().st_size / 2**20

    first = cli.ok("pretrain", "ar", *MICRO, "--data", str(data), "--max-steps", "1", "-n", "a")
    tokenizer = str(cli.home / "runs" / "a" / "tokenizer.json")
    again = cli.ok(
        "pretrain", "ar", *MICRO, "--data", str(data), "--tokenizer", tokenizer, "--max-steps", "1", "-n", "b"
    )  # fmt: skip

    reports = [line for line in first.output.splitlines() if "tokenized" in line]
    assert len(reports) == 1 and reports[0].startswith(f"a: tokenized {size_mb:,.1f} MB in ")
    assert reports[0].endswith(" MB/s)")
    assert "tokenized" not in again.output  # the same file and tokenizer: the token cache is read


def test_sft_says_which_conversations_it_skipped_and_why(pipeline, tmp_path):
    import shutil

    question = {"role": "user", "content": "Which city is the capital of Ninaria?"}
    answer = {"role": "assistant", "content": "Tidar."}
    conversations = [[question, answer]] * 8 + [
        [question],
        [answer, question],
        [question, {**answer, "content": ""}],
    ]
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"conversations": c}) + "\n" for c in conversations))
    args = ["--data", str(data), "--max-steps", "1", "--batch-size", "2", "--run-name", "skips"]
    result = pipeline.ok("sft", "--base", "ar-base", *args)
    shutil.rmtree(pipeline.home / "runs" / "skips")  # the session's pipeline keeps its four runs
    assert "skips: skipped 3 of 11 conversations: 1 without an assistant answer, " in result.stderr
    assert "1 with an answer before any question, 1 with an empty message\n" in result.stderr


def test_an_import_shows_what_it_reads_on_a_terminal(cli, tmp_path, monkeypatch):
    from io import StringIO

    from rich.console import Console

    from llada_cli.cli import progress

    checkpoint, tokenizer = _files(tmp_path)
    screen = StringIO()
    monkeypatch.setattr(progress, "err", Console(file=screen, force_terminal=True, width=80))
    cli.ok("runs", "import", str(checkpoint), "--name", "mm", "--tokenizer", str(tokenizer))
    size = checkpoint.stat().st_size / 2**20
    assert f"importing {checkpoint.name} ({size:,.1f} MB)" in screen.getvalue()
    screen.truncate(0)
    cli.ok("-q", "runs", "import", str(checkpoint), "--name", "mm2", "--tokenizer", str(tokenizer))
    assert screen.getvalue() == ""  # --quiet: results and errors only


FIELDS = ["loss 3.2109", "1m05s left", "val 3.3000", "lr 3.00e-04", "1,234 tok/s", "block 16"]


@pytest.mark.parametrize("width", [40, 60, 80, 100, 200])
def test_the_bar_fits_the_width_dropping_fields_from_the_end(width):
    from rich.text import Text

    from llada_cli.cli.progress import MAX_BAR, MIN_BAR, bar_line

    line = Text.from_markup(bar_line("dlm-base", 50, 600, "50/600", FIELDS, width)).plain
    assert len(line) <= width and line.startswith("dlm-base ") and "50/600  loss 3.2109" in line
    shown = [field for field in FIELDS if field in line]
    assert shown == FIELDS[: len(shown)]  # the most important ones, in order
    bar = line.count("━")
    assert bar == 0 or bar >= 3
    assert bar >= MIN_BAR or len(shown) == 1 and width - len(line) < MIN_BAR
    if width >= 200:
        assert shown == FIELDS and bar == MAX_BAR


@pytest.mark.parametrize("width", [60, 80])
def test_a_training_bar_at_narrow_widths_keeps_the_step_count_and_loss(cli, monkeypatch, width):
    from io import StringIO

    from rich.console import Console
    from rich.text import Text

    from llada_cli.cli import progress

    screen = StringIO()
    monkeypatch.setattr(progress, "err", Console(file=screen, force_terminal=True, width=width))
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "6", "--run-name", "bar")
    last = [line for line in Text.from_ansi(screen.getvalue()).plain.splitlines() if line.startswith("bar ━")]
    assert last and "6/6  loss " in last[-1] and len(last[-1]) <= width and "…" not in last[-1]
