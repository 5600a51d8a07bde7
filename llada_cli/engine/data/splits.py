"""A stage's training and validation rows: packed text for pretraining, templated conversations for
SFT, pairs of them for DPO, prompts with their answers for GRPO.

The tokenized corpus is cached on disk per (source, tokenizer); the split is a seeded
permutation, so evaluation finds the same held-out rows later (data/packing.py split_rows).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import write_text_atomic
from ..config import DataConfig, Kind, Stage
from ..model.tokenizer import Tokenizer
from ..objectives.losses import PairBatch, PretrainBatch, PromptBatch, SFTBatch, pair_batch, sft_batch
from ..runs.registry import Registry
from .formats import ConversationCounts
from .packing import pack_rows, rows_at, split_indices
from .pairs import pair_tables
from .prompts import prompt_set
from .sft import SFTCounts, SFTRows, no_rows_error, sft_row_chunks
from .sources import (
    iter_pretrain_texts,
    iter_sft_conversations,
    sft_fingerprint,
    source_fingerprint,
    source_size,
)
from .tokens import cache_key, load_table, stream_dtype, tokenize_documents, write_tables


class ReadProgress:
    """Bytes of a source read so far, passed on to `report(done, total)` about once per megabyte."""

    STRIDE = 1 << 20

    def __init__(self, total: int, report: Callable[[int, int], None]) -> None:
        self.total, self.report = total, report
        self.done = self.reported = 0

    def __call__(self, size: int) -> None:
        self.done += size
        if self.done - self.reported >= self.STRIDE:
            self.reported = self.done
            self.report(self.done, self.total)

    def finish(self) -> None:
        self.report(self.total, self.total)


def pretrain_rows(
    registry: Registry,
    data: DataConfig,
    tokenizer: Tokenizer,
    tokenizer_file: Path,
    seq_len: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Packed (N, seq_len) rows of a corpus; its token stream is computed once per (source, tokenizer).
    `on_progress(bytes done, bytes in all)` follows the tokenization of a file."""
    tokenizer_hash = hashlib.sha256(tokenizer_file.read_bytes()).hexdigest()
    key = cache_key(source_fingerprint(data.data, data.jsonl_field, registry.data_dir), tokenizer_hash)
    cache_path = registry.cache_dir / "tokens" / f"{key}.npy"
    if cache_path.is_file():
        stream = np.load(cache_path, mmap_mode="r")
    else:
        size = source_size(data.data, registry.data_dir)
        progress = ReadProgress(size, on_progress) if size and on_progress else None
        texts = iter_pretrain_texts(data.data, registry.data_dir, data.jsonl_field, progress)
        stream = tokenize_documents(texts, tokenizer, cache_path)
        if progress:
            progress.finish()
    return pack_rows(stream, seq_len)


def validation_rows(
    registry: Registry, data: DataConfig, tokenizer: Tokenizer, tokenizer_file: Path, seq_len: int, seed: int
) -> torch.Tensor:
    rows = pretrain_rows(registry, data, tokenizer, tokenizer_file, seq_len)
    return rows_at(rows, split_indices(len(rows), data.val_fraction, seed)[1])


SFT_TABLES = ("input_ids", "response_mask", "pad_mask")
SFT_CACHE_VERSION = "2"  # 2: conversations without a user question and its answer are skipped


def sft_rows(
    registry: Registry,
    data: DataConfig,
    tokenizer: Tokenizer,
    tokenizer_file: Path,
    seq_len: int,
    one_turn_per_row: bool,
) -> SFTRows:
    """The SFT rows of a source, built once per (source, tokenizer, row length, row kind) into
    the data cache, streaming (memory bounded by a chunk of conversations), and memory-mapped."""
    tokenizer_hash = hashlib.sha256(tokenizer_file.read_bytes()).hexdigest()
    fingerprint = sft_fingerprint(data.data, registry.data_dir)
    folder = (
        registry.cache_dir
        / "sft"
        / cache_key(fingerprint, tokenizer_hash, str(seq_len), str(one_turn_per_row), SFT_CACHE_VERSION)
    )
    paths = [folder / f"{name}.npy" for name in SFT_TABLES]
    counts_path = folder / "counts.json"  # written last: its presence says the tables are whole
    if not counts_path.is_file():
        counts, read = SFTCounts(), ConversationCounts()
        conversations = iter_sft_conversations(data.data, registry.data_dir, read)
        chunks = sft_row_chunks(conversations, tokenizer, seq_len, one_turn_per_row, counts)
        dtypes = [stream_dtype(tokenizer.vocab_size), np.bool_, np.bool_]
        if write_tables(chunks, paths, dtypes)[0] == 0:
            shutil.rmtree(folder)
            raise no_rows_error(seq_len, counts.skipped)
        counts.conversations = read.summary()
        write_text_atomic(counts_path, json.dumps(asdict(counts)))
    counts = SFTCounts(**json.loads(counts_path.read_text()))
    input_ids, response_mask, pad_mask = (load_table(path) for path in paths)
    return SFTRows(input_ids, response_mask, pad_mask, counts.truncated, counts.skipped, counts.conversations)


@dataclass
class StageData:
    train_batch: Callable[[torch.Tensor], Any]  # row indices -> a batch
    train_rows: int
    val_batches: list[Any]
    summary: dict[str, int]  # shown to the user and kept in run.json
    answers: list[str] | None = None  # GRPO: each prompt's expected answer, by PromptBatch.index


def stage_data(
    registry: Registry,
    kind: Kind,
    stage: Stage,
    data: DataConfig,
    tokenizer: Tokenizer,
    tokenizer_file: Path,
    seq_len: int,
    batch_size: int,
    eval_batches: int,
    seed: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> StageData:
    """Train and validation rows of a stage, and how to batch them. GRPO's rows are prompts of at
    most `seq_len` tokens, and it has no validation rows (its answers are sampled, not given)."""
    if stage == "grpo":
        prompts = prompt_set(data.data, tokenizer, seq_len)
        columns = (prompts.ids, prompts.lengths, np.arange(len(prompts.answers)))
        return StageData(
            lambda idx: PromptBatch(*(rows_at(t, idx) for t in columns)),
            len(prompts.answers),
            [],
            {"rows": len(prompts.answers), "val_rows": 0, "seq_len": seq_len, "skipped": prompts.skipped},
            prompts.answers,
        )
    tables: tuple[np.ndarray, ...]
    make: Callable[..., PretrainBatch | SFTBatch | PairBatch]
    summary: dict[str, int]
    if stage == "pretrain":
        rows = pretrain_rows(registry, data, tokenizer, tokenizer_file, seq_len, on_progress)
        tables, make, summary = (rows,), PretrainBatch, {}
    elif stage == "dpo":
        tables, skipped = pair_tables(data.data, tokenizer, seq_len)
        make, summary = pair_batch, {"skipped": skipped}
    else:
        # Diffusion trains one assistant turn per row: later turns must not see an earlier answer masked.
        sft = sft_rows(
            registry, data, tokenizer, tokenizer_file, seq_len, one_turn_per_row=kind == "diffusion"
        )
        tables, make = (sft.input_ids, sft.response_mask, sft.pad_mask), sft_batch
        summary = {"truncated": sft.truncated, "skipped": sft.skipped, **sft.conversations}
    train_idx, val_idx = split_indices(len(tables[0]), data.val_fraction, seed)
    val_batches = [
        make(*(rows_at(t, val_idx[i : i + batch_size]) for t in tables))
        for i in range(0, min(len(val_idx), eval_batches * batch_size), batch_size)
    ]
    return StageData(
        lambda idx: make(*(rows_at(t, train_idx[idx]) for t in tables)),
        len(train_idx),
        val_batches,
        {"rows": len(train_idx), "val_rows": len(val_idx), "seq_len": seq_len, **summary},
    )
