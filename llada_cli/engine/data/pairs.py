"""Preference pairs for DPO: the builtin corpus's own, or a .jsonl of rows
{"prompt": "..." | "messages": [...], "chosen": "...", "rejected": "..."} (the common format).

Each pair becomes two SFT rows of the same prompt (data/sft.py: one assistant turn, the turns
before it as prompt), one answered with the chosen text and one with the rejected text.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..model.tokenizer import Tokenizer
from .builtin import builtin_corpus
from .lines import json_objects
from .prompts import Messages, prompt_messages
from .sft import ENCODE_CHUNK, ConversationEncoder, cut_to, one_turn_rows, to_rows
from .tokens import ENCODE_CHUNK_CHARS, chunked, stream_dtype

PAIR_FORMAT = '{"prompt" or "messages", "chosen", "rejected"}'


def iter_pairs(source: str) -> Iterator[tuple[Messages, str, str]]:
    """(prompt messages, chosen answer, rejected answer) of "builtin" or a .jsonl file."""
    if source == "builtin":
        for pair in builtin_corpus().pairs:
            yield [{"role": "user", "content": pair.prompt}], pair.chosen, pair.rejected
        return
    path = Path(source).expanduser()
    if path.suffix != ".jsonl":
        raise UsageError(f"preference pairs are read from a .jsonl file of {PAIR_FORMAT} rows, not {path}")
    for lineno, row in json_objects(path, what="preference pairs"):
        yield pair_of(row, f"{path} line {lineno}")


def pair_of(row: dict, where: str) -> tuple[Messages, str, str]:
    """One row's prompt messages (ending on a user turn), chosen and rejected answers."""
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if not (isinstance(chosen, str) and chosen and isinstance(rejected, str) and rejected):
        raise UsageError(f"{where}: expected non-empty strings under chosen and rejected ({PAIR_FORMAT})")
    return prompt_messages(row, where, PAIR_FORMAT), chosen, rejected


def pair_tables(source: str, tokenizer: Tokenizer, max_len: int) -> tuple[tuple[np.ndarray, ...], int]:
    """Chosen (ids, response, pad) and rejected (ids, response, pad) rows of length max_len, and
    how many pairs were skipped (an answer with no token left within max_len)."""
    encoder = ConversationEncoder(tokenizer)
    chosen, rejected, skipped = [], [], 0
    for chunk in chunked(iter_pairs(source), _characters, ENCODE_CHUNK, ENCODE_CHUNK_CHARS):
        conversations = [
            [*messages, {"role": "assistant", "content": answer}]
            for messages, good, bad in chunk
            for answer in (good, bad)
        ]
        encoded = encoder.encode_batch(conversations)
        for good, bad in zip(encoded[::2], encoded[1::2], strict=True):
            rows = [cut_to(one_turn_rows(side)[-1], max_len) for side in (good, bad)]
            if not all(row.ids for row in rows):  # cut_to keeps a row only up to its last answer token
                skipped += 1
                continue
            chosen.append(rows[0])
            rejected.append(rows[1])
    if not chosen:
        raise UsageError(f"no preference pair of {source} has both answers within {max_len} tokens")
    dtype = stream_dtype(tokenizer.vocab_size)
    return (
        *to_rows(chosen, tokenizer.eos_id, max_len, dtype),
        *to_rows(rejected, tokenizer.eos_id, max_len, dtype),
    ), skipped


def _characters(pair: tuple[Messages, str, str]) -> int:
    messages, good, bad = pair
    return sum(len(m["content"]) for m in messages) + len(good) + len(bad)
