"""Tokenize a corpus once into a flat token stream, cached on disk as a .npy file, streaming.

The stream is every document's ids followed by EOS, so packing can cut it anywhere and the
document boundaries survive. Training memory-maps the cache instead of re-tokenizing.
"""

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..atomic import atomic_path
from ..errors import LladaError
from ..model.tokenizer import Tokenizer

# One encode_batch call takes at most ENCODE_CHUNK documents and ENCODE_CHUNK_CHARS characters of
# text: parallel, yet memory bounded by the chunk's text whatever the documents' length. The
# tokenizer's encodings cost tens of bytes a character of text: on 64 MB of 17 KB documents,
# chunks of 4,096 of them peaked at 3.2 GB where 2 Mi characters peak at 270 MB, at the same speed
# (bench/data.py). A document longer than the budget is a chunk of its own (a line is at most
# 64 MiB, data/lines.py).
ENCODE_CHUNK = 4096
ENCODE_CHUNK_CHARS = 2 << 20
COPY_BLOCK = 16 << 20
T = TypeVar("T")


def cache_key(*parts: str) -> str:
    """A short stable hex digest of `parts`, for cache file names."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") + b"\0")  # the separator keeps ("ab", "c") != ("a", "bc")
    return digest.hexdigest()[:16]


def stream_dtype(vocab_size: int) -> type[np.unsignedinteger]:
    return np.uint16 if vocab_size < 2**16 else np.uint32


def chunked(items: Iterable[T], size: Callable[[T], int], count: int, budget: int) -> Iterator[list[T]]:
    """`items` in lists of at most `count` items whose sizes add up to at most `budget` (a list
    holds one item at least, so an item larger than the budget is a chunk of its own)."""
    chunk: list[T] = []
    total = 0
    for item in items:
        weight = size(item)
        if chunk and (len(chunk) == count or total + weight > budget):
            yield chunk
            chunk, total = [], 0
        chunk.append(item)
        total += weight
    if chunk:
        yield chunk


def encode_chunks(texts: Iterable[str], tokenizer: Tokenizer) -> Iterator[np.ndarray]:
    """The stream in pieces of at most ENCODE_CHUNK documents and ENCODE_CHUNK_CHARS characters,
    each encoded in one parallel batch call."""
    dtype = stream_dtype(tokenizer.vocab_size)
    for chunk in chunked(texts, len, ENCODE_CHUNK, ENCODE_CHUNK_CHARS):
        yield _encoded(chunk, tokenizer, dtype)


def _encoded(texts: list[str], tokenizer: Tokenizer, dtype: type) -> np.ndarray:
    eos: np.ndarray = np.array([tokenizer.eos_id], dtype=dtype)
    return np.concatenate(
        [part for ids in tokenizer.encode_batch(texts) for part in (np.asarray(ids, dtype), eos)]
    )


def write_stream(chunks: Iterable[np.ndarray], path: Path, dtype: type) -> None:
    """A 1-D .npy file of the chunks, written as they come (see write_tables)."""
    write_tables(((np.asarray(chunk, dtype),) for chunk in chunks), [path], [dtype])


def write_tables(
    chunks: Iterable[tuple[np.ndarray, ...]], paths: list[Path], dtypes: list[type]
) -> list[int]:
    """One .npy file per position of the chunk tuples, the chunks' rows appended as they come:
    memory is bounded by a chunk. The raw rows go to unnamed temporary files, then each final file
    is the header and a block copy of them, renamed into place. Returns the row counts."""
    totals = [0] * len(paths)
    shapes: list[tuple[Any, tuple[int, ...]]] = [(dtype, ()) for dtype in dtypes]  # until a chunk says
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:  # unnamed temporary files: gone however this ends
        raws = [stack.enter_context(tempfile.TemporaryFile(dir=path.parent)) for path in paths]
        for chunk in chunks:
            for i, array in enumerate(chunk):
                raws[i].write(np.ascontiguousarray(array).tobytes())
                totals[i] += len(array)
                shapes[i] = (array.dtype, array.shape[1:])
        for raw, path, total, (dtype, trailing) in zip(raws, paths, totals, shapes, strict=True):
            raw.seek(0)
            with atomic_path(path) as tmp, tmp.open("wb") as out:
                descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
                np.lib.format.write_array_header_1_0(
                    out, {"descr": descr, "fortran_order": False, "shape": (total, *trailing)}
                )
                shutil.copyfileobj(raw, out, COPY_BLOCK)
    return totals


def load_stream(path: Path) -> np.ndarray:
    try:
        stream = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise LladaError(f"token cache {path} is unreadable ({exc}); delete it and rerun") from exc
    if stream.ndim != 1:
        raise LladaError(f"token cache {path} is not a 1-D token stream; delete it and rerun")
    return stream


def load_table(path: Path) -> np.ndarray:
    """A cached table (rows of SFT tokens or masks), memory-mapped."""
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise LladaError(f"data cache {path} is unreadable ({exc}); delete it and rerun") from exc


def tokenize_documents(texts: Iterable[str], tokenizer: Tokenizer, cache_path: Path | None) -> np.ndarray:
    """The corpus as one 1-D stream of ids, each document followed by EOS.

    With `cache_path`, an existing cache is memory-mapped instead of tokenizing again; a fresh
    stream is written there chunk by chunk (memory bounded by a chunk, not by the corpus) and
    memory-mapped back.
    """
    if cache_path is not None and Path(cache_path).is_file():
        return load_stream(Path(cache_path))
    dtype = stream_dtype(tokenizer.vocab_size)
    if cache_path is None:
        pieces = list(encode_chunks(texts, tokenizer))
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)
    write_stream(encode_chunks(texts, tokenizer), Path(cache_path), dtype)
    return load_stream(Path(cache_path))
