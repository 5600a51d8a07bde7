"""`llada serve` refuses what cannot work in one line: a taken port, a run given twice, a missing extra."""

from __future__ import annotations

import socket
import sys

import pytest


def test_a_taken_port_and_a_repeated_run_are_refused(pipeline):
    pytest.importorskip("uvicorn")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = str(taken.getsockname()[1])
    result = pipeline("serve", "ar-chat", "--port", port)
    taken.close()
    assert result.exit_code == 1 and "cannot listen on 127.0.0.1:" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = pipeline("serve", "ar-chat", "ar-chat", "--port", "0")
    assert result.exit_code == 2 and "given twice" in result.output
    assert pipeline("serve", "ar-chat", "--api-key", " ").exit_code == 2


def test_without_the_extra_serve_says_how_to_install_it(pipeline, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    result = pipeline("serve", "ar-chat")
    assert result.exit_code == 1 and "pip install 'llada-cli[serve]'" in result.output
