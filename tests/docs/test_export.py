"""docs/export.md: the transformers snippet it gives runs as written on an exported AR run."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT


def test_the_documented_transformers_snippet_runs(pipeline, tmp_path, monkeypatch, capsys):
    pytest.importorskip("transformers")
    [snippet] = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "export.md").read_text(), re.S)
    assert '"./ar-chat-hf"' in snippet
    pipeline.ok("export", "ar-chat", str(tmp_path / "ar-chat-hf"))
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "docs/export.md", "exec"), {})  # an exception fails the test
    assert capsys.readouterr().out.endswith("\n")  # the answer was printed (a tiny model's may be short)
