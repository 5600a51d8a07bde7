"""The README's commands run as written on the quick start's runs (in miniature)."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
QUICK_START_RUNS = {"ar-base", "dlm-base", "ar-chat", "dlm-chat"}
RUNNABLE = {"sample", "compare", "eval", "plot", "runs", "chat", "sweep", "export", "pipeline"}


def readme_commands() -> list[str]:
    """Every `llada ...` line of a code block and every inline `llada ...` with real values."""
    lines = [
        line.split("  #")[0].strip()
        for block in re.findall(r"```[a-z]*\n(.*?)```", README, re.S)
        for line in block.splitlines()
    ]
    inline = [" ".join(code.split()) for code in re.findall(r"`((?:printf [^`]*\| )?llada [^`]+)`", README)]
    commands = [
        c
        for c in dict.fromkeys([*lines, *inline])
        if c.startswith(("llada ", "printf ")) and len(c.split("llada ")[1].split()) > 1
    ]
    placeholder = re.compile(r"\b[A-Z]{2,}\b|\.\.\.|\||\[")
    return [
        c
        for c in commands
        if not placeholder.search(c.split("| ")[-1])
        and c.split("llada ")[1].split()[0] in RUNNABLE
        and (QUICK_START_RUNS & set(shlex.split(c)) or "pipeline" in c)
    ]


def test_the_readme_has_runnable_commands():
    commands = readme_commands()
    assert any("sample dlm-chat" in c for c in commands) and any(c.startswith("printf") for c in commands)


def test_readme_commands_run_as_written(pipeline, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # examples/ paths are the repository's
    for command in readme_commands():
        stdin = None
        if command.startswith("printf"):
            printed, command = command.split(" | ")
            stdin = shlex.split(printed)[1].encode().decode("unicode_escape")
        words = shlex.split(command)[1:]
        words = [str(tmp_path / w) if w.endswith(".png") else w for w in words]  # keep the tree clean
        if words[0] == "pipeline":  # in a home of its own: an experiment refuses runs made outside it
            words = ["--home", str(tmp_path / "pipeline-home"), *words]
        pipeline.ok(*words, input=stdin)
