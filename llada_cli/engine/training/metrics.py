"""metrics.jsonl, one JSON record per logged step, and the loss window a log line averages."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def truncate_metrics(path: Path, after_step: int) -> None:
    """Drop the records past `after_step` (a resumed run redoes those steps)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if step_of(line) <= after_step]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


class LogWindow:
    """Loss and throughput since the last log line."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.loss_sum, self.tokens, self.steps = 0.0, 0, 0

    def state_dict(self) -> dict[str, float]:
        return {"loss_sum": self.loss_sum, "tokens": self.tokens, "steps": self.steps}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.loss_sum, self.tokens, self.steps = (
            float(state["loss_sum"]),
            int(state["tokens"]),
            int(state["steps"]),
        )

    def add(self, loss: float, tokens: int) -> None:
        self.loss_sum += loss
        self.tokens += tokens
        self.steps += 1

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(1, self.steps)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(1e-9, time.perf_counter() - self.started)


def step_of(line: str) -> float:
    """The step of a metrics line; a torn last line (the run was killed mid-write) counts as redone."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf
