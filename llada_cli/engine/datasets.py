"""Token rows for training and evaluation, with the tokenized corpus cached on disk."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from .data.packing import pack_rows, split_rows
from .data.sources import load_pretrain_texts, source_fingerprint
from .data.tokens import cache_key, tokenize_documents
from .registry import Registry
from .tokenizer import Tokenizer


def pretrain_rows(
    registry: Registry, source: str, field: str, tokenizer: Tokenizer, tokenizer_file: Path, seq_len: int
) -> torch.Tensor:
    """Packed (N, seq_len) rows of a corpus; its token stream is computed once per (source, tokenizer)."""
    tokenizer_hash = hashlib.sha256(tokenizer_file.read_bytes()).hexdigest()
    key = cache_key(source_fingerprint(source, field, registry.data_dir), tokenizer_hash)
    cache_path = registry.cache_dir / "tokens" / f"{key}.npy"
    if cache_path.is_file():
        stream = np.load(cache_path, mmap_mode="r")
    else:
        texts = load_pretrain_texts(source, registry.data_dir, field)
        stream = tokenize_documents(texts, tokenizer, cache_path)
    return pack_rows(stream, seq_len)


def validation_rows(
    registry: Registry,
    source: str,
    field: str,
    tokenizer: Tokenizer,
    tokenizer_file: Path,
    seq_len: int,
    val_fraction: float,
    seed: int,
) -> torch.Tensor:
    rows = pretrain_rows(registry, source, field, tokenizer, tokenizer_file, seq_len)
    return split_rows(rows, val_fraction, seed)[1]
