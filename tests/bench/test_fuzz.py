"""bench/fuzz.py: how a probe is classified, and one command fuzzed end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import fuzz  # noqa: E402  (a script, not a package)


def ends(body) -> tuple[str, str]:
    @click.command()
    def command() -> None:
        body()

    return fuzz.outcome(CliRunner().invoke(command, []))


def refuse(code: int, *lines: str):
    def body() -> None:
        for line in lines:
            click.echo(line, err=True)
        sys.exit(code)

    return body


def test_each_way_a_probe_can_end() -> None:
    assert ends(lambda: None) == ("accepted", "")
    assert ends(refuse(2, "error: --x must be at least 1")) == ("refused", "error: --x must be at least 1")
    assert ends(refuse(1, "error: internal error in llada x: KeyError: 'a'"))[0] == "traceback"
    assert ends(lambda: {}["a"])[0] == "traceback"  # an exception that escaped the command
    assert ends(refuse(2, "error: one", "error: two"))[0] == "messy"
    assert ends(refuse(3, "error: one"))[0] == "messy"  # neither a usage (2) nor a runtime (1) error


def test_runs_show_fuzzed_has_no_traceback_silent_accept_or_hang() -> None:
    command = [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--commands", "runs show", "--json"]
    report = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    # NAME: 5 bad run names and 3 paths that are no run (missing, a folder, a named pipe); --json
    assert (report["probes"], report["refused"], report["accepted"]) == (9, 8, 1)
    assert report["tracebacks"] == report["silent_accepts"] == report["hangs"] == 0
