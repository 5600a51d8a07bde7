"""What every command shares (cli/common.py)."""

from __future__ import annotations


def test_counts_read_in_the_right_number():
    from llada_cli.cli.common import counted

    assert counted(1, "thread") == "1 thread" and counted(2, "thread") == "2 threads"
    assert counted(0, "forward pass", "forward passes") == "0 forward passes"
    assert counted(1, "forward pass", "forward passes") == "1 forward pass"
