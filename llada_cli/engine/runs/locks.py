"""One process owns a run while it writes it: an OS lock on RUN/.lock, held as long as the process lives.

The lock is `flock` on an open file, so the operating system releases it when the process ends,
however it ends (a `kill -9` included): no stale lock file ever needs cleaning. The holder writes
its pid and command line into the file, for the message a second writer gets. Readers (sample,
eval, `runs list`) never take it; they only ask whether someone holds it.

On Windows there is no lock: `fcntl` is missing and a run is never reported busy.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

from ..errors import LladaError

try:
    import fcntl
except ImportError:  # Windows: msvcrt's byte-range locks cannot be probed without taking them
    fcntl = None  # type: ignore[assignment]  # the module's stand-in where there is none

LOCK_FILE = ".lock"
ATTEMPTS = 5  # a reader's probe holds a shared lock for microseconds: try again before refusing


class RunBusy(LladaError):
    """Another live process owns the run."""


class RunLock:
    """The exclusive lock on one run folder; `release` (or leaving the `with` block) gives it up,
    and so does dropping the object, as the process's own exit would."""

    def __init__(self, folder: Path, fd: int | None) -> None:
        self.folder = folder
        self.fd = fd

    @classmethod
    def acquire(cls, folder: Path) -> RunLock:
        """Lock `folder` (which must exist) for this process, or raise RunBusy naming the holder."""
        if fcntl is None:
            return cls(folder, None)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)  # never truncate a holder's note
        for attempt in range(ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == ATTEMPTS - 1:
                    os.close(fd)
                    raise RunBusy(_busy_message(folder.name, _note(folder))) from None
                time.sleep(0.01)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n{_command_line()}\n".encode())
        return cls(folder, fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file is what releases a flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def holder(folder: Path) -> str | None:
    """'1234 (llada pretrain ar ...)' while a process holds the run's lock, else None."""
    path = folder / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # the run was just removed
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return _note(folder)
    finally:
        os.close(fd)  # also drops the shared lock the probe may have taken


def refuse_if_busy(folder: Path) -> None:
    """Raise RunBusy when another process holds the run (a check; `RunLock.acquire` is the claim)."""
    note = holder(folder)
    if note is not None:
        raise RunBusy(_busy_message(folder.name, note))


def _busy_message(name: str, note: str) -> str:
    return f"run '{name}' is being trained by process {note}; wait for it or stop it"


def shown_status(folder: Path, stored: str) -> str:
    """The status to show: 'running' only while a process holds the run; a run.json left saying
    running by a process that no longer holds it belongs to a killed run."""
    if holder(folder) is not None:
        return "running"
    return "interrupted" if stored == "running" else stored


def _note(folder: Path) -> str:
    """The holder's pid and its command, shortened: '1234 (llada pretrain ar ...)'."""
    try:
        pid, _, command = (folder / LOCK_FILE).read_text().partition("\n")
    except OSError:
        return "another process"
    command = command.strip()
    if len(command) > 40:
        command = command[:40].rsplit(" ", 1)[0] + " ..."
    return f"{pid.strip() or '?'} ({command})" if command else pid.strip() or "?"


def _command_line() -> str:
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
