"""Put datasets on disk: MiniMind from ModelScope, the builtin corpus as JSONL files, or a copy of
a local file.

Every file appears complete or not at all: downloads land in a temporary folder next to their
destination and are renamed into place; a failed download leaves nothing behind, and what a killed
fetch left (a temp file or folder) goes at the next fetch into that folder, which one process at a
time writes.
"""

import json
import logging
import os
import shutil
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from ..atomic import atomic_path
from ..errors import LladaError
from .builtin import builtin_corpus

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

MINIMIND_DATASET = "gongjy/minimind_dataset"
DEFAULT_MINIMIND_FILES = ("pretrain_t2t_mini.jsonl", "sft_t2t_mini.jsonl")


def _download(dataset_id: str, file_name: str, local_dir: Path) -> Path:
    """One file of a ModelScope dataset into local_dir (the boundary tests replace)."""
    _check_reachable(os.environ.get("MODELSCOPE_DOMAIN", "www.modelscope.cn"))
    logging.getLogger("modelscope").setLevel(logging.ERROR)  # its retries would print pages of warnings
    from modelscope.hub.file_download import dataset_file_download  # slow import; only when fetching

    return Path(dataset_file_download(dataset_id, file_name, local_dir=str(local_dir)))


def _check_reachable(host: str, timeout: float = 5.0) -> None:
    """Fail at once, in one line, when the hub cannot be reached (instead of retrying for half a minute)."""
    name = host.split("://")[-1].split("/")[0]
    try:
        socket.create_connection((name, 443), timeout=timeout).close()
    except OSError as error:
        raise LladaError(f"cannot reach {name} ({error.strerror or error}): are you offline?") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fetch_one(file_name: str, out_dir: Path) -> Path:
    target = out_dir / Path(file_name).name
    if target.is_file():
        return target
    partial = out_dir / f".partial-{target.name}"
    shutil.rmtree(partial, ignore_errors=True)  # left over from an interrupted run
    partial.mkdir()
    try:
        os.replace(_download(MINIMIND_DATASET, file_name, partial), target)
    except Exception as exc:
        raise LladaError(
            f"could not download {file_name} from modelscope dataset {MINIMIND_DATASET}: {_one_line(exc)}; "
            f"check your network or download it by hand into {out_dir}"
        ) from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def fetch_minimind(out_dir: Path, files: Sequence[str] = DEFAULT_MINIMIND_FILES) -> list[Path]:
    """Download the MiniMind files into out_dir; files already there are kept, not fetched again."""
    with _writing(Path(out_dir)):
        return [_fetch_one(name, Path(out_dir)) for name in files]


@contextmanager
def _writing(out_dir: Path) -> Iterator[None]:
    """out_dir, owned by this process while it writes there (a lock on the folder itself: no file
    appears in it), cleaned of a killed fetch's temp files; a folder made for a failed fetch goes."""
    made = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        if fcntl is not None:  # Windows: no lock
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LladaError(f"another process is writing into {out_dir}; let it finish") from None
        for leftover in out_dir.glob(".*.tmp"):  # an atomic write a kill interrupted
            leftover.unlink(missing_ok=True)
        yield
    except BaseException:
        if made and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    finally:
        os.close(fd)  # releases the lock


def copy_local(path: Path, out_dir: Path) -> Path:
    """A local data file copied into out_dir under its own name, complete or not at all (a copy
    already there is replaced); the file itself when it is already there."""
    target = Path(out_dir) / path.name
    with _writing(Path(out_dir)):
        if target.resolve() != path.resolve():
            try:
                with atomic_path(target) as tmp:
                    shutil.copyfile(path, tmp)
            except OSError as error:  # named by the copy's path, not the temporary file beside it
                raise LladaError(f"cannot copy {path} to {target}: {error.strerror or error}") from None
    return target


def _write_jsonl(path: Path, rows: Iterable[dict]) -> Path:
    """One JSON object per line, written to a temporary file and renamed into place."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return path


def write_builtin(out_dir: Path, seed: int = 0) -> list[Path]:
    """The builtin corpus as pretrain.jsonl, sft.jsonl and questions.jsonl (the benchmark), for local use."""
    out_dir = Path(out_dir)
    corpus = builtin_corpus(seed)
    with _writing(out_dir):
        return [
            _write_jsonl(out_dir / "pretrain.jsonl", ({"text": doc} for doc in corpus.documents)),
            _write_jsonl(out_dir / "sft.jsonl", ({"conversations": conv} for conv in corpus.conversations)),
            _write_jsonl(out_dir / "questions.jsonl", (asdict(q) for q in corpus.questions)),
        ]
