"""Tokenize a corpus once into a flat token stream, cached on disk as a .npy file.

The stream is every document's ids followed by EOS, so packing can cut it anywhere and the
document boundaries survive. Training memory-maps the cache instead of re-tokenizing.
"""

import hashlib
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import LladaError
from ..tokenizer import Tokenizer

ENCODE_CHUNK = 4096  # documents per encode_batch call: parallel, yet bounded memory


def cache_key(*parts: str) -> str:
    """A short stable hex digest of `parts`, for cache file names."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") + b"\0")  # the separator keeps ("ab", "c") != ("a", "bc")
    return digest.hexdigest()[:16]


def stream_dtype(vocab_size: int) -> type[np.unsignedinteger]:
    return np.uint16 if vocab_size < 2**16 else np.uint32


def encode_stream(texts: list[str], tokenizer: Tokenizer) -> np.ndarray:
    dtype = stream_dtype(tokenizer.vocab_size)
    pieces = []
    for start in range(0, len(texts), ENCODE_CHUNK):
        for ids in tokenizer.encode_batch(texts[start : start + ENCODE_CHUNK]):
            pieces.append(np.asarray(ids + [tokenizer.eos_id], dtype=dtype))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)


def save_stream(stream: np.ndarray, path: Path) -> None:
    """np.save through a temporary file in the same folder, then an atomic rename."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.save(handle, stream)


def load_stream(path: Path) -> np.ndarray:
    try:
        stream = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise LladaError(f"token cache {path} is unreadable ({exc}); delete it and rerun") from exc
    if stream.ndim != 1:
        raise LladaError(f"token cache {path} is not a 1-D token stream; delete it and rerun")
    return stream


def tokenize_documents(texts: list[str], tokenizer: Tokenizer, cache_path: Path | None) -> np.ndarray:
    """The corpus as one 1-D stream of ids, each document followed by EOS.

    With `cache_path`, an existing cache is memory-mapped instead of tokenizing again, and a
    fresh stream is saved there for next time.
    """
    if cache_path is not None and Path(cache_path).is_file():
        return load_stream(Path(cache_path))
    stream = encode_stream(texts, tokenizer)
    if cache_path is not None:
        save_stream(stream, Path(cache_path))
    return stream
