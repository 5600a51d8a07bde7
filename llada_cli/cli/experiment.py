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
from ..engine.errors import LladaError, UsageError, named
from ..engine.runs.registry import Registry


@dataclass(frozen=True)
class Step:
    name: str  # its table, e.g. "pretrain.ar", or "eval[2]" for the second of a list
    stage: str  # data, pretrain, sft, merge, eval, sample, compare, plot
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
    experiment: str  # the file's full path
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, registry: Registry, experiment: Path) -> PipelineState:
        where = str(experiment.resolve())
        key = hashlib.sha1(where.encode()).hexdigest()[:8]
        return cls.of_file(registry.home / "pipelines" / f"{experiment.stem}-{key}.json", where)

    @classmethod
    def of_file(cls, path: Path, experiment: str | None = None) -> PipelineState:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            steps, experiment = state.get("steps", {}), experiment or str(state.get("experiment", ""))
        except (OSError, ValueError, AttributeError):
            steps = {}  # no state yet, or an unreadable one: every step is compared afresh
        return cls(path, experiment or path.stem, steps if isinstance(steps, dict) else {})

    def record(self, step: Step, inputs: dict[str, str], done: bool) -> None:
        self.steps[step.name] = {"words": step.words, "inputs": inputs, "done": done, "run": step.run}
        write_json_atomic(self.path, {"experiment": self.experiment, "steps": self.steps})

    def made_elsewhere(self, run: str) -> tuple[str, dict[str, Any]] | None:
        """The step of another experiment file of this home (a copy of this one, say) that last
        trained `run`: that file and the step's record."""
        found: list[tuple[float, str, dict[str, Any]]] = []
        for path in self.path.parent.glob("*.json"):
            if path == self.path:
                continue
            other = PipelineState.of_file(path)
            found += [
                (path.stat().st_mtime, other.experiment, record)
                for record in other.steps.values()
                if isinstance(record, dict) and record.get("run") == run
            ]
        return max(found, key=lambda item: item[0])[1:] if found else None


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
    registry: Registry,
    state: PipelineState,
    step: Step,
    inputs: dict[str, str],
    overwrite: bool,
    global_words: list[str],
) -> Decision:
    """What the step does now. A run it trains that this file did not make is compared with what
    made it: the step of another experiment file of this home (a copy of this one), or the same
    command line (the file's --dry-run, run by a shell); else it is refused, since skipping it
    would leave this file's settings unapplied."""
    record = state.steps.get(step.name)
    if step.run is None:
        if record and record.get("done") and not _changes(record, step.words, inputs):
            return Decision("skip", "done before with the same command and inputs")
        return Decision("run")
    if step.run not in registry.names():
        return Decision("run")
    info = registry.existing(step.run).info()
    made_by = ""  # this file made it, or what is named here
    if record is None:
        made_by, record = _made_elsewhere(state, step, inputs, info.command, global_words)
    if record is None:
        if overwrite:
            return Decision("overwrite", f"run '{step.run}' was made outside a pipeline")
        raise LladaError(
            f"step {step.name}: run '{step.run}' was made outside a pipeline, so whether it has this "
            f"file's settings cannot be told; give {named('overwrite')} to train it again, or take the "
            "step out of the file to use the run as it is"
        )
    changes = _changes(record, step.words, inputs)
    if changes:
        if not overwrite:
            raise UsageError(
                f"step {step.name}: run '{step.run}' was made{made_by} with other settings: "
                + "; ".join(changes)
                + f"; give {named('overwrite')} to train it again"
            )
        return Decision("overwrite", "; ".join(changes))
    if info.is_finished:
        made_here = f" (made{made_by})" if made_by else ""
        return Decision("skip", f"run '{step.run}' {info.status} at step {info.step}{made_here}")
    return Decision("resume", f"run '{step.run}' is {info.status} at step {info.step}")


def _made_elsewhere(
    state: PipelineState, step: Step, inputs: dict[str, str], command: list[str], global_words: list[str]
) -> tuple[str, dict[str, Any] | None]:
    """What made the step's run, outside this file: (" by" it, the step's record as it made it)."""
    elsewhere = state.made_elsewhere(step.run or "")
    if elsewhere is not None:
        return f" by {elsewhere[0]}", elsewhere[1]
    if _compared_words(command[1:]) == _compared_words([*global_words, *step.words]):
        return " by the same command line", {"words": step.words, "inputs": inputs}
    return "", None


def _compared_words(words: list[str]) -> list[str]:
    """A command line's words without --home (the registry the run is in) and the flags a
    pipeline adds from the run's state (--resume, --overwrite)."""
    kept: list[str] = []
    skip = False
    for word in words:
        if skip or word in ("--resume", "--overwrite") or word.startswith("--home="):
            skip = False
        elif word == "--home":
            skip = True
        else:
            kept.append(word)
    return kept


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
