"""What an experiment's step should do now: run, resume, start over, or nothing.

An experiment (`llada pipeline FILE`) is a list of command lines. Each step's command line and
the runs it reads (with the moment each finished) are recorded in a state file under the home,
so a second run of the same file skips what is done, resumes what was interrupted, and refuses
a step whose settings or inputs changed unless the user asks to start it over.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.atomic import write_json_atomic
from ..engine.errors import UsageError, named
from ..engine.runs.registry import Registry


@dataclass(frozen=True)
class Step:
    name: str  # its table, e.g. "pretrain.ar", or "eval[2]" for the second of a list
    stage: str  # data, pretrain, sft, eval, sample, compare, plot
    words: list[str]  # the command line after `llada` and the global options
    run: str | None = None  # the run a training step writes


@dataclass(frozen=True)
class Decision:
    action: str  # run, resume, overwrite, skip
    reason: str = ""

    def extra_words(self) -> list[str]:
        return {"resume": ["--resume"], "overwrite": ["--overwrite"]}.get(self.action, [])


@dataclass
class PipelineState:
    """The state file of one experiment file: per step, its last command line and inputs."""

    path: Path
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, registry: Registry, experiment: Path) -> PipelineState:
        where = str(experiment.resolve())
        key = hashlib.sha1(where.encode()).hexdigest()[:8]
        path = registry.home / "pipelines" / f"{experiment.stem}-{key}.json"
        try:
            steps = json.loads(path.read_text(encoding="utf-8")).get("steps", {})
        except (OSError, ValueError, AttributeError):
            steps = {}  # no state yet, or an unreadable one: every step is compared afresh
        return cls(path, steps if isinstance(steps, dict) else {})

    def record(self, step: Step, inputs: dict[str, str], done: bool) -> None:
        self.steps[step.name] = {"words": step.words, "inputs": inputs, "done": done}
        write_json_atomic(self.path, {"steps": self.steps})


def run_inputs(registry: Registry, step: Step) -> dict[str, str]:
    """The runs a step's command line names (other than its own), each with when it finished."""
    names = set(registry.names())
    inputs = {}
    for word in step.words:
        name = word.split("@")[0]
        if name in names and name != step.run:
            info = registry.existing(name).info()
            inputs[name] = f"{info.status} {info.finished or info.created}"
    return inputs


def decide(
    registry: Registry, state: PipelineState, step: Step, inputs: dict[str, str], overwrite: bool
) -> Decision:
    record = state.steps.get(step.name)
    changes = _changes(record, step.words, inputs) if record else []
    if step.run is None:
        if record and record.get("done") and not changes:
            return Decision("skip", "done before with the same command and inputs")
        return Decision("run")
    if step.run not in registry.names():
        return Decision("run")
    if changes:
        if not overwrite:
            raise UsageError(
                f"step {step.name}: run '{step.run}' was made with other settings: "
                + "; ".join(changes)
                + f"; give {named('overwrite')} to train it again"
            )
        return Decision("overwrite", "; ".join(changes))
    info = registry.existing(step.run).info()
    if info.is_finished:
        made_here = "" if record else " (made outside this pipeline: its settings were not compared)"
        return Decision("skip", f"run '{step.run}' {info.status} at step {info.step}{made_here}")
    return Decision("resume", f"run '{step.run}' is {info.status} at step {info.step}")


def _changes(record: dict[str, Any], words: list[str], inputs: dict[str, str]) -> list[str]:
    """What differs from the recorded step: option values, then the runs it reads."""
    before, now = _options(record.get("words", [])), _options(words)
    changes = [
        f"{flag} {now.get(flag, '(not given)')} (was {before.get(flag, 'not given')})"
        for flag in sorted(set(before) | set(now))
        if before.get(flag) != now.get(flag)
    ]
    recorded = record.get("inputs", {})
    changes += [
        f"run '{name}' changed since" for name in sorted(inputs) if recorded.get(name) != inputs[name]
    ]
    return changes


def _options(words: list[str]) -> dict[str, str]:
    """A command line's words as {flag or argument position: value}."""
    options: dict[str, str] = {}
    position = 0
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("-"):
            takes_value = index + 1 < len(words) and not words[index + 1].startswith("--")
            value = words[index + 1] if takes_value else "(on)"
            options[word] = f"{options[word]} {value}" if word in options else value
            index += 2 if takes_value else 1
        else:
            options[f"argument {position}"] = word
            position += 1
            index += 1
    return options
