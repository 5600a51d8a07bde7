"""Atomic writes: a temp file in the same folder, then os.replace. A reader (or a killed writer)
never sees half a file."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import UsageError


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


def file_mode() -> int:
    """What open() gives a new file under the current umask (mkstemp, and safetensors, give 0600)."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """What mkdir() gives a new folder under the current umask (mkdtemp gives 0700)."""
    return 0o777 & ~_umask()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path next to `path`; on success it replaces `path` in one step, with the mode
    a plain write would have given it, whatever the writer did to the temp file."""
    path = Path(path)
    _check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _check_replaceable(path: Path) -> None:
    """Only a regular file is replaced: os.replace would put a file in the place of a device or a
    named pipe (as root, `--trace /dev/null` would turn /dev/null into a file)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path} is a folder; give a file name (a folder is not replaced)")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path} is not a regular file (a device, pipe or socket); give a file name")


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
