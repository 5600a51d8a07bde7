"""The run registry: named run folders under $LLADA_HOME/runs, atomic writes, checkpoints.

runs/<name>/
  run.json  tokenizer.json  metrics.jsonl
  checkpoints/step-0000500/{model.safetensors, trainer.pt}
  latest    (text file naming the newest complete checkpoint folder)
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from .atomic import write_text_atomic
from .errors import LladaError, UsageError, named
from .runinfo import RunInfo

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
CHECKPOINT_DIR = re.compile(r"^step-(\d+)$")


def default_home() -> Path:
    env = os.environ.get("LLADA_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("llada"))


# ---------------------------------------------------------------------------
# one run folder


@dataclass(frozen=True)
class Run:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    @property
    def tokenizer_path(self) -> Path:
        return self.path / "tokenizer.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def info(self) -> RunInfo:
        return RunInfo.load(self.info_path)

    def write_info(self, info: RunInfo) -> None:
        info.save(self.info_path)

    def update_info(self, **changes: Any) -> RunInfo:
        info = self.info().updated(**changes)
        self.write_info(info)
        return info

    @property
    def kind(self) -> str:
        return self.info().kind

    def checkpoint_steps(self) -> list[int]:
        if not self.checkpoints_dir.is_dir():
            return []
        steps = (CHECKPOINT_DIR.match(p.name) for p in self.checkpoints_dir.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in steps if m)

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step:07d}"

    def latest_step(self) -> int | None:
        pointer = self.path / "latest"
        if pointer.is_file():
            match = CHECKPOINT_DIR.match(pointer.read_text().strip())
            if match and self.checkpoint_dir(int(match.group(1))).is_dir():
                return int(match.group(1))
        steps = self.checkpoint_steps()
        return steps[-1] if steps else None

    def resolve_step(self, step: int | None) -> int:
        """The checkpoint to load: the given step (must exist) or the latest."""
        steps = self.checkpoint_steps()
        if not steps:
            raise UsageError(f"run '{self.name}' has no checkpoint yet")
        if step is None:
            return self.latest_step()
        if step not in steps:
            shown = ", ".join(str(s) for s in steps[-8:])
            raise UsageError(f"run '{self.name}' has no checkpoint at step {step}; it has: {shown}")
        return step

    def commit_checkpoint(self, step: int, write_files: Any) -> Path:
        """Write a checkpoint folder atomically: `write_files(tmp_dir)` fills a temp folder that is
        renamed into place, then the `latest` pointer moves. A killed run never leaves half a checkpoint."""
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        final = self.checkpoint_dir(step)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.checkpoints_dir))
        try:
            write_files(tmp)
            if final.exists():  # re-saving a step: move the old one aside first, drop it after
                old = final.with_name(final.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old)
            else:
                os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        write_text_atomic(self.path / "latest", final.name + "\n")
        return final

    def prune_checkpoints(self, keep_last: int, protect: set[int]) -> None:
        """Drop all but the newest `keep_last` checkpoints (0 keeps all); `protect` (the best) stays."""
        if keep_last <= 0:
            return
        steps = self.checkpoint_steps()
        for step in steps[:-keep_last]:
            if step not in protect:
                shutil.rmtree(self.checkpoint_dir(step))


# ---------------------------------------------------------------------------
# the registry: names -> run folders


class Registry:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.runs_dir = home / "runs"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    def names(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.runs_dir.iterdir() if RUN_NAME.match(p.name) and (p / "run.json").is_file()
        )

    def runs(self) -> list[Run]:
        return [Run(self.runs_dir / name) for name in self.names()]

    def resolve(self, spec: str) -> tuple[Run, int | None]:
        """A run from `name`, `name@step` or a folder path; the step is None unless given."""
        name, step = split_step(spec)
        by_path = Path(name).expanduser()
        if ("/" in name or name.startswith(".")) and (by_path / "run.json").is_file():
            return Run(by_path.resolve()), step
        candidate = self.runs_dir / name
        if RUN_NAME.match(name) and (candidate / "run.json").is_file():
            return Run(candidate), step
        named_like = nano_llada_run_name(name)
        if named_like and (self.runs_dir / named_like / "run.json").is_file() and not by_path.exists():
            return Run(self.runs_dir / named_like), step
        raise UsageError(self._unknown_run_message(name))

    def _unknown_run_message(self, name: str) -> str:
        names = self.names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        if close:
            return f"no run named '{name}' in {self.runs_dir}; did you mean {', '.join(close)}?"
        if names:
            return f"no run named '{name}' in {self.runs_dir}; see `llada runs list`"
        return f"no run named '{name}': {self.runs_dir} has no runs yet"

    def prepare_new(self, name: str, overwrite: bool) -> tuple[Run, Path | None]:
        """A fresh run folder, and where an overwritten run was moved aside (None if there was none).

        The old run is only deleted by `drop_replaced` once the new one has started, so a new run
        that fails its checks gives the old one back (`restore_replaced`).
        """
        if not RUN_NAME.match(name):
            raise UsageError(f"run name '{name}' may use letters, digits, '.', '_' and '-' only")
        run = Run(self.runs_dir / name)
        replaced = None
        if run.path.exists():
            if not overwrite:
                raise UsageError(self._exists_message(run))
            replaced = run.path.with_name(f".{name}.replaced")
            shutil.rmtree(replaced, ignore_errors=True)
            os.replace(run.path, replaced)
        run.path.mkdir(parents=True)
        return run, replaced

    def _exists_message(self, run: Run) -> str:
        """What the user can do with a run of that name, given the state it is in."""
        start = f"run '{run.name}' already exists in {self.runs_dir}"
        other = f"choose another {named('run_name')}, or {named('overwrite')} to replace it"
        try:
            info = run.info()
        except (OSError, ValueError, LladaError):
            return f"{start} (its run.json cannot be read); {other}"
        if info.train is None:
            return f"{start} ({info.stage}); {other}"
        if info.is_finished:
            return (
                f"{start} ({info.status} at step {info.step}); {named('resume')} with a larger "
                f"{named('max_steps')} trains it further, or {other}"
            )
        return f"{start} ({info.status}); {named('resume')} continues it, or {other}"

    @staticmethod
    def restore_replaced(run: Run, replaced: Path | None) -> None:
        shutil.rmtree(run.path, ignore_errors=True)
        if replaced is not None:
            os.replace(replaced, run.path)

    @staticmethod
    def drop_replaced(replaced: Path | None) -> None:
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)

    def existing(self, name: str) -> Run:
        run = Run(self.runs_dir / name)
        if not RUN_NAME.match(name) or not run.info_path.is_file():
            raise UsageError(self._unknown_run_message(name))
        return run

    def remove(self, name: str) -> None:
        shutil.rmtree(self.existing(name).path)


def nano_llada_run_name(path: str) -> str | None:
    """`weights/<run>_state_dict.pt` or `weights/<run>.pt`, where Nano-LLaDA saves run <run>: the name."""
    file = Path(path).name
    for suffix in (".pt", ".pth", ".safetensors"):
        if file.endswith(suffix):
            name = file[: -len(suffix)].removesuffix("_state_dict")
            return name if RUN_NAME.match(name) else None
    return None


def split_step(spec: str) -> tuple[str, int | None]:
    if "@" not in spec:
        return spec, None
    name, _, step = spec.rpartition("@")
    if not step.isdigit():
        if "/" in step:  # an '@' inside a folder path, e.g. /exp@v2/run
            return spec, None
        raise UsageError(f"'{spec}': the part after @ must be a step number, e.g. {name}@500")
    return name, int(step)
