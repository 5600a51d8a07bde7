"""The run registry: named run folders under $LLADA_HOME/runs (each one a `Run`: runs/folder.py).

runs/<name>/             (run.json, tokenizer.json, metrics.jsonl, checkpoints/, latest, .lock)
runs/.<name>.replaced/   (an overwritten run, kept until the new one saved its first checkpoint)

A killed process never loses a run: `recover` gives back, or keeps visible, what a stopped
overwrite left, and `Run.clean_leftovers` removes what a stopped checkpoint write left.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ..errors import LladaError, UsageError, named
from .folder import Run
from .locks import RunBusy, RunLock, holder, refuse_if_busy, shown_status

# \Z, not $: "$" also matches before a final newline, and "nl\n" would become a folder name
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
REPLACED_DIR = re.compile(r"^\.(.+)\.replaced\Z")


def default_home() -> Path:
    env = os.environ.get("LLADA_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("llada"))


# ---------------------------------------------------------------------------
# the registry: names -> run folders


@dataclass
class Creation:
    """A run folder being created: this process's lock on it, and the run it replaces (moved aside
    to `.NAME.replaced`) until the new one is kept."""

    lock: RunLock
    replaced: Path | None = None


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


class Registry:
    def __init__(self, home: Path, notify: Callable[[str], None] = to_stderr) -> None:
        self.home = home
        self.runs_dir = home / "runs"
        self.notify = notify  # one line for each run `recover` moves: never silently

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

    def incomplete_names(self) -> list[str]:
        """Run folders without run.json: starts killed before writing it (`remove` deletes them)."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.runs_dir.iterdir()
            if RUN_NAME.match(p.name) and p.is_dir() and not (p / "run.json").is_file()
        )

    def children(self, name: str) -> list[str]:
        """The runs whose run.json names run `name` as their parent (`init_from`, `base`) or as a
        source of their merge."""
        found = []
        for run in self.runs():
            try:
                info = run.info()
                parents = [split_step(info.parent)[0]] if info.parent else []
                parents += [str(source.get("run")) for source in info.merged_from or []]
                if run.name != name and name in parents:
                    found.append(run.name)
            except (OSError, ValueError, LladaError):  # an unreadable run.json names no parent
                continue
        return found

    def resolve(self, spec: str) -> tuple[Run, int | None]:
        """A run from `name`, `name@step` or a folder path; the step is None unless given."""
        name, step = split_step(spec)
        by_path = Path(name).expanduser()
        if ("/" in name or name.startswith(".")) and (by_path / "run.json").is_file():
            return Run(by_path.resolve()), step
        candidate = self.runs_dir / name
        if RUN_NAME.match(name):
            self.recover(name)
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

    def prepare_new(self, name: str, overwrite: bool) -> tuple[Run, Creation]:
        """A fresh run folder locked by this process, and the overwritten run moved aside (if any).

        The old run stays in `.NAME.replaced` until `drop_replaced` (the new run has saved its first
        checkpoint); a new run that fails its checks gives it back (`restore_replaced`), and after a
        kill `recover` does. A folder a killed start left without run.json is simply replaced.
        """
        if not RUN_NAME.match(name):
            raise UsageError(
                f"run name {name!r} may use letters, digits, '.', '_' and '-' only, "
                "and starts with a letter or a digit"
            )
        self.recover(name)
        run = Run(self.runs_dir / name)
        if not run.path.exists():
            return run, Creation(self._new_folder(run))
        if run.info_path.is_file() and not overwrite:
            raise UsageError(self._exists_message(run))
        # The old run's lock refuses a run being trained, and moves with the folder: `recover`
        # leaves `.NAME.replaced` alone until the new folder is locked in turn.
        with RunLock.acquire(run.path):
            replaced = None
            if run.info_path.is_file():
                replaced = self._replaced_path(name)
                os.replace(run.path, replaced)
            else:
                shutil.rmtree(run.path)
                self.notify(f"removed the folder of run '{name}' that a killed start left without run.json")
            return run, Creation(self._new_folder(run), replaced)

    def check_free(self, name: str, overwrite: bool) -> None:
        """A taken name without `overwrite` is refused before a long read (an import, a merge)."""
        if Run(self.runs_dir / name).info_path.is_file() and not overwrite:
            raise UsageError(
                f"run '{name}' already exists in {self.runs_dir}; choose another {named('name')}, or "
                f"{named('overwrite')} to replace it"
            )

    @contextmanager
    def writing_new(self, name: str, overwrite: bool) -> Iterator[Run]:
        """A run written whole in one go (an import, a merge), not trained: the run it replaces
        comes back if the writing fails and goes once it is done; the lock is released either way."""
        run, creation = self.prepare_new(name, overwrite)
        try:
            yield run
        except BaseException:
            self.restore_replaced(run, creation)
            raise
        self.drop_replaced(creation)
        creation.lock.release()

    @staticmethod
    def _new_folder(run: Run) -> RunLock:
        try:
            run.path.mkdir(parents=True)
        except FileExistsError:
            raise LladaError(f"run '{run.name}' was just created by another process") from None
        return RunLock.acquire(run.path)

    def _exists_message(self, run: Run) -> str:
        """What the user can do with a run of that name, given the state it is in."""
        start = f"run '{run.name}' already exists in {self.runs_dir}"
        other = f"choose another {named('run_name')}, or {named('overwrite')} to replace it"
        try:
            info = run.info()
        except (OSError, ValueError, LladaError):
            return f"{start} (its run.json cannot be read); {other}"
        if info.train is None:
            return f"{start} ({info.origin}); {other}"
        if info.is_finished:
            return (
                f"{start} ({info.status} at step {info.step}); {named('resume')} with a larger "
                f"{named('max_steps')} trains it further, or {other}"
            )
        return f"{start} ({shown_status(run.path, info.status)}); {named('resume')} continues it, or {other}"

    @staticmethod
    def restore_replaced(run: Run, creation: Creation) -> None:
        """A new run that failed its checks goes, and the run it replaced (if any) comes back."""
        if creation.replaced is None:
            shutil.rmtree(run.path, ignore_errors=True)
        else:
            with RunLock.acquire(creation.replaced):  # `recover` leaves a locked folder alone
                shutil.rmtree(run.path, ignore_errors=True)
                os.replace(creation.replaced, run.path)
        creation.lock.release()

    @staticmethod
    def drop_replaced(creation: Creation) -> None:
        """The new run is kept: the run it replaced goes."""
        if creation.replaced is not None:
            shutil.rmtree(creation.replaced, ignore_errors=True)
            creation.replaced = None

    def existing(self, name: str) -> Run:
        run = Run(self.runs_dir / name)
        if not RUN_NAME.match(name):
            raise UsageError(self._unknown_run_message(name))
        self.recover(name)
        if run.info_path.is_file():
            return run
        if run.path.is_dir():
            refuse_if_busy(run.path)  # being created right now
            raise UsageError(
                f"run '{name}' has no run.json: its start was stopped before writing it; start it again "
                f"without {named('resume')}, or remove it with `llada runs rm {name}`"
            )
        raise UsageError(self._unknown_run_message(name))

    def removable(self, name: str) -> Run:
        """A run folder `remove` may delete (one without run.json too): it exists and is not in use."""
        run = Run(self.runs_dir / name)
        if RUN_NAME.match(name):
            self.recover(name)
        if not RUN_NAME.match(name) or not run.path.is_dir():
            raise UsageError(self._unknown_run_message(name))
        refuse_if_busy(run.path)
        return run

    def remove(self, name: str) -> None:
        run = self.removable(name)
        with RunLock.acquire(run.path):  # no trainer may claim it while it goes
            shutil.rmtree(run.path)

    # -- what killed processes leave --------------------------------------------------

    def recover(self, name: str) -> None:
        """Give back, or keep visible, the run a stopped overwrite left in `.NAME.replaced`: back in
        place when the new run has no run.json, else kept as `NAME.replaced-<time>`. Never while a
        process holds either folder (an overwrite under way)."""
        replaced, run = self._replaced_path(name), Run(self.runs_dir / name)
        if not replaced.is_dir() or holder(run.path) is not None:
            return
        try:
            lock = RunLock.acquire(replaced)
        except (RunBusy, FileNotFoundError):  # another process is recovering it
            return
        with lock:
            if not replaced.is_dir():
                return
            if run.info_path.is_file():
                kept = self._free_path(f"{name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
                os.replace(replaced, kept)
                self.notify(
                    f"run '{name}' was overwritten by a run stopped before its first checkpoint; "
                    f"the old run is kept as '{kept.name}'"
                )
            else:
                shutil.rmtree(run.path, ignore_errors=True)  # a new folder without run.json holds nothing
                os.replace(replaced, run.path)
                self.notify(f"recovered run '{name}': the run overwriting it was stopped before it started")

    def recover_all(self) -> None:
        if self.runs_dir.is_dir():
            for path in sorted(self.runs_dir.iterdir()):
                if match := REPLACED_DIR.match(path.name):
                    self.recover(match.group(1))

    def _replaced_path(self, name: str) -> Path:
        return self.runs_dir / f".{name}.replaced"

    def _free_path(self, name: str) -> Path:
        path, count = self.runs_dir / name, 1
        while path.exists():
            count += 1
            path = self.runs_dir / f"{name}-{count}"
        return path


def nano_llada_run_name(path: str) -> str | None:
    """`weights/<run>_state_dict.pt` or `weights/<run>.pt`, where Nano-LLaDA saves run <run>: the name."""
    file = Path(path).name
    for suffix in (".pt", ".pth", ".safetensors"):
        if file.endswith(suffix):
            name = file[: -len(suffix)].removesuffix("_state_dict")
            return name if RUN_NAME.match(name) else None
    return None


def split_step(spec: str) -> tuple[str, int | None]:
    """`name@step` -> (name, step): a step of ASCII digits (not '²'), at most a 64-bit integer."""
    if not spec.strip():
        raise UsageError("the run name is empty: give a run name, name@step, a run folder or a file")
    if "@" not in spec:
        return spec, None
    name, _, step = spec.rpartition("@")
    if not (step.isascii() and step.isdigit()):
        if "/" in step:  # an '@' inside a folder path, e.g. /exp@v2/run
            return spec, None
        raise UsageError(f"'{spec}': the part after @ must be a step number, e.g. {name or 'run'}@500")
    if not name.strip():
        raise UsageError(f"'{spec}': the run name before @ is empty, e.g. run@{step}")
    if len(step.lstrip("0")) > 18:  # 64 bits hold every number of 18 digits, not every one of 19
        raise UsageError(f"'{spec}': step {step} is more than any run can reach")
    return name, int(step)
