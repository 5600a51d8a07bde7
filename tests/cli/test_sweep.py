"""`llada sweep` from the command line: every setting printed, the front drawn, AR runs refused,
progress on a terminal only, the batch it used."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from rich.console import Console
from rich.text import Text

from llada_cli.cli import progress
from llada_cli.engine.evaluation.sweep import DEFAULT_GRID


def test_sweep_from_the_cli_prints_every_setting_and_draws_the_front(pipeline, tmp_path):
    png = tmp_path / "sweep.png"
    result = pipeline.ok(
        "sweep", "dlm-chat", "--limit", "4", "--batch-size", "2", "--out", str(png), "--json"
    )
    report = json.loads(result.stdout)
    labels = [p["label"] for p in report["points"]]
    assert labels[0] == "exact" and "threshold 0.9" in labels and "quality mode (editing)" in labels
    assert report["points"][0]["agreement"] == 1.0 and any(p["pareto"] for p in report["points"])
    # the micro model is barely trained: near-equal confidences may rank differently once padded
    assert report["questions"] == 4 and set(report["batch_differences"]) <= {0, 1, 2, 3}
    assert png.stat().st_size > 10_000
    assert report["batch_size"] == 2 and len(result.stderr.splitlines()) == 1  # piped: no progress
    refused = pipeline("sweep", "ar-chat", "--limit", "1", "--out", str(png))
    assert refused.exit_code == 2 and "ar-chat@" in refused.stderr and "is an AR run" in refused.stderr


@pytest.mark.parametrize("width", [60, 80])
def test_sweep_shows_its_progress_on_a_terminal_and_reports_the_batch_it_used(
    pipeline, tmp_path, monkeypatch, width
):
    screen = StringIO()
    monkeypatch.setattr(progress, "err", Console(file=screen, force_terminal=True, width=width))
    result = pipeline.ok("sweep", "dlm-chat", "--limit", "2", "--out", str(tmp_path / "s.png"), columns=width)
    drawn = Text.from_ansi(screen.getvalue()).plain
    settings = len(DEFAULT_GRID)
    assert "sampler settings" in drawn and f"{settings}/{settings}" in drawn  # redrawn after each setting
    assert result.stderr.splitlines()[0].endswith("in batches of 2")
    assert "batch 2 vs one at a time" in result.stdout and "batch 8" not in result.stdout
