"""Shell completion: quick (no torch), from the registry of the home given, by run kind, and the
shipped scripts of completions/ are current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llada_cli.cli import app
from llada_cli.cli.completion import SHELLS, completion_script
from llada_cli.engine.config import ModelConfig
from llada_cli.engine.runs.record import RunInfo
from tests.conftest import ROOT

HEAVY = ("torch", "numpy", "matplotlib", "tokenizers", "safetensors", "modelscope", "transformers")

# Builds every command (all --help needs), completes a line, then shows a command's --help.
PROBE = f"""
import os, sys
import typer.main
import llada_cli.cli

typer.main.get_command(llada_cli.cli.app)
for argv in (["llada"], ["llada", "sample", "--help"]):
    sys.argv = argv
    try:
        llada_cli.cli.main()
    except SystemExit:
        pass
    os.environ.pop("_LLADA_COMPLETE", None)
print("loaded:", *[name for name in {HEAVY!r} if name in sys.modules])
"""


def test_commands_help_and_completion_load_no_torch(tmp_path: Path) -> None:
    env = {"_LLADA_COMPLETE": "complete_bash", "COMP_WORDS": "llada sample --", "COMP_CWORD": "2"}
    env["LLADA_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--checkpoint" in result.stdout and "Generate answers" in result.stdout
    assert result.stdout.splitlines()[-1] == "loaded:"


def complete(line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What bash is offered for the last word of `line` (a trailing space starts a new word)."""
    monkeypatch.setenv("_LLADA_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", line)
    monkeypatch.setenv("COMP_CWORD", str(len(line.split(" ")) - 1))
    with pytest.raises(SystemExit):
        app([], prog_name="llada")
    return capsys.readouterr().out.split()


def home_with(home: Path, kinds: dict[str, str | None]) -> Path:
    """A registry whose runs have these kinds (None: a corrupt run.json)."""
    for name, kind in kinds.items():
        folder = home / "runs" / name
        folder.mkdir(parents=True)
        if kind is None:
            (folder / "run.json").write_text("{")
        else:
            RunInfo(name, kind, "pretrain", ModelConfig(), 0, versions={}).save(folder / "run.json")
    return home


def test_run_names_come_from_the_home_given_before_or_after_the_command(tmp_path, monkeypatch, capsys):
    first = home_with(tmp_path / "first", {"ar-one": "ar", "dlm-one": "diffusion"})
    second = home_with(tmp_path / "second", {"ar-two": "ar"})
    monkeypatch.setenv("LLADA_HOME", str(first))
    assert complete("llada sample ", monkeypatch, capsys) == ["ar-one", "dlm-one"]
    assert complete(f"llada --home {second} sample ", monkeypatch, capsys) == ["ar-two"]
    assert complete(f"llada sample --home {second} ", monkeypatch, capsys) == ["ar-two"]
    assert complete(f"llada sample -p hi --home {second} a", monkeypatch, capsys) == ["ar-two"]
    assert complete(f"llada runs rm ar-two --home {second} ", monkeypatch, capsys) == ["ar-two"]
    monkeypatch.setenv("LLADA_HOME", str(second))
    assert complete("llada chat ", monkeypatch, capsys) == ["ar-two"]


def test_options_that_take_one_kind_of_run_offer_only_runs_of_that_kind(tmp_path, monkeypatch, capsys):
    home = home_with(tmp_path, {"ar-a": "ar", "ar-b": "ar", "dlm-a": "diffusion", "broken": None})
    monkeypatch.setenv("LLADA_HOME", str(home))
    assert complete("llada compare --ar ", monkeypatch, capsys) == ["ar-a", "ar-b"]
    assert complete("llada compare --minimind-checkpoint ar-", monkeypatch, capsys) == ["ar-a", "ar-b"]
    assert complete("llada compare --ar ar-a --diffusion ", monkeypatch, capsys) == ["dlm-a"]
    assert complete("llada pretrain diffusion --init-from ", monkeypatch, capsys) == ["ar-a", "ar-b"]
    assert complete("llada sweep ", monkeypatch, capsys) == ["dlm-a"]
    assert complete("llada sample ", monkeypatch, capsys) == ["ar-a", "ar-b", "broken", "dlm-a"]


def test_data_fetch_completes_the_named_sources(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLADA_HOME", str(tmp_path))
    assert complete("llada data fetch ", monkeypatch, capsys) == ["builtin", "minimind"]
    assert complete("llada data fetch m", monkeypatch, capsys) == ["minimind"]
    assert complete("llada data fetch ./corpus", monkeypatch, capsys) == []  # the shell completes a path


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
