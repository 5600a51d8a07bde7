"""What every command shares (cli/common.py)."""

from __future__ import annotations


def test_counts_read_in_the_right_number():
    from llada_cli.cli.common import counted

    assert counted(1, "thread") == "1 thread" and counted(2, "thread") == "2 threads"
    assert counted(0, "forward pass", "forward passes") == "0 forward passes"
    assert counted(1, "forward pass", "forward passes") == "1 forward pass"


def test_ctrl_c_outside_training_says_interrupted_without_a_resume_hint(pipeline, monkeypatch):
    from llada_cli import api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api.Model, "generate", interrupted)
    result = pipeline("sample", "ar-chat", "-p", "Hi", "--max-new-tokens", "2")
    assert result.exit_code == 130 and result.stderr == "interrupted\n"
