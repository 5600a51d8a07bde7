"""What every command shares (cli/common.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_counts_read_in_the_right_number():
    from llada_cli.cli.common import counted

    assert counted(1, "thread") == "1 thread" and counted(2, "thread") == "2 threads"
    assert counted(0, "forward pass", "forward passes") == "0 forward passes"
    assert counted(1, "forward pass", "forward passes") == "1 forward pass"
    assert (
        counted(1.0, "epoch", spec=".2g") == "1 epoch" and counted(0.5, "epoch", spec=".2g") == "0.5 epochs"
    )


def test_ctrl_c_outside_training_says_interrupted_without_a_resume_hint(pipeline, monkeypatch):
    from llada_cli import api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api.Model, "generate", interrupted)
    result = pipeline("sample", "ar-chat", "-p", "Hi", "--max-new-tokens", "2")
    assert result.exit_code == 130 and result.stderr == "interrupted\n"


def test_output_survives_an_encoding_that_cannot_write_it(pipeline):
    """PYTHONIOENCODING=ascii: what the encoding lacks is replaced (text) or escaped (JSON)."""
    from typer.testing import CliRunner

    from llada_cli.cli import app

    runner = CliRunner(charset="ascii")
    home = ["--home", str(pipeline.home)]
    shown = runner.invoke(app, [*home, "runs", "show", "ar-base"], catch_exceptions=False)
    assert shown.exit_code == 0 and "ar-base" in shown.stdout and " ? " in shown.stdout  # was ' · '
    prompt = "caf\u00e9 \u2026 \U0001f600"
    args = [*home, "sample", "ar-chat", "-p", prompt, "--max-new-tokens", "2", "--json"]
    answer = runner.invoke(app, args, catch_exceptions=False)
    assert answer.exit_code == 0 and answer.stdout.isascii()
    assert json.loads(answer.stdout)["results"][0]["prompt"] == prompt


def test_a_terminal_width_of_zero_or_one_still_shows_the_results(pipeline):
    """COLUMNS as llada starts: rich would draw tables and answers 0 columns wide, i.e. nothing."""
    env = {**os.environ, "LLADA_HOME": str(pipeline.home)}
    for columns, command in (("0", ["runs", "list"]), ("1", ["sample", "ar-chat", "-p", "Hi"])):
        args = [sys.executable, "-m", "llada_cli", *command]
        result = subprocess.run(args, env={**env, "COLUMNS": columns}, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert ("dlm-chat" in result.stdout) if command[0] == "runs" else result.stdout.strip()
