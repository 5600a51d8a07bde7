"""Progress output (cli/progress.py): log lines off a terminal, tokenizing and import reports."""

from __future__ import annotations

import json

from tests.conftest import MICRO
from tests.engine.interchange.test_imported_runs import _files


def test_logs_off_a_terminal_give_one_line_per_step_with_validation_and_time(cli):
    args = [*MICRO, "--log-every", "2", "--eval-every", "3", "--max-steps", "6", "--run-name", "logs"]
    result = cli.ok("-v", "pretrain", "ar", *args)
    lines = [line for line in result.stderr.splitlines() if line.startswith("logs step ")]
    assert [line.split()[2] for line in lines] == ["2/6", "3/6", "4/6", "6/6"]  # log or eval steps, once each
    assert ["val " in line for line in lines] == [False, True, False, True]
    assert all(" elapsed, " in line and line.endswith(" left") for line in lines)


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
