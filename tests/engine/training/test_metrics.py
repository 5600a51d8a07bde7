"""metrics.jsonl: records appended one per line, and cut back to a step when a run resumes."""

from __future__ import annotations

import json
from pathlib import Path

from llada_cli.engine.training.metrics import LogWindow, append_metrics, truncate_metrics


def test_a_resume_keeps_the_records_up_to_its_step_and_drops_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    for step in (1, 2, 3):
        append_metrics(path, {"step": step, "loss": 1.0 / step})
    with path.open("a") as handle:
        handle.write('{"step": 4, "lo')  # killed in the middle of a write
    truncate_metrics(path, after_step=2)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]


def test_truncating_a_run_with_no_metrics_yet_writes_nothing(tmp_path: Path) -> None:
    truncate_metrics(tmp_path / "metrics.jsonl", after_step=0)
    assert list(tmp_path.iterdir()) == []


def test_the_window_averages_the_steps_since_the_last_log_line_and_restores_them() -> None:
    window = LogWindow()
    window.add(2.0, 10)
    window.add(4.0, 30)
    restored = LogWindow()
    restored.load_state_dict(window.state_dict())
    assert (restored.mean_loss, restored.tokens, restored.steps) == (3.0, 40, 2)
