"""`python -m llada_cli` (llada_cli/__main__.py) runs the app."""

from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_runs_the_app():
    result = subprocess.run([sys.executable, "-m", "llada_cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "pretrain" in result.stdout
