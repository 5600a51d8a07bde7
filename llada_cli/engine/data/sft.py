"""SFT rows: ChatML conversations as fixed-length token rows with exact response masks.

Each message is tokenized piece by piece (header, content, <|im_end|>), so we know which tokens
belong to assistant turns without searching the ids afterwards. A row is

    <|im_start|>user\\n ... <|im_end|>\\n<|im_start|>assistant\\n ... <|im_end|> EOS EOS ...

The response is an assistant turn's content and its closing <|im_end|>. A row always ends on a
response token: the newline after the last <|im_end|> is left out, and a row cut to max_len
moves back to the end of its last response, so no prompt token (a user turn, a header) sits
before the EOS padding that a diffusion model trains as answer.

AR rows hold a whole conversation, every assistant turn a response (causal attention makes
that exact). Diffusion rows hold one assistant turn each (LLaDA): row i is turns < i plus the
i-th user turn as clean prompt and the i-th answer as response, nothing after it.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError, named
from ..model.tokenizer import Tokenizer
from ..vocabulary import IM_START
from .tokens import ENCODE_CHUNK_CHARS, chunked, stream_dtype

ENCODE_CHUNK = 4096  # conversations tokenized (in parallel) at a time, at most


@dataclass
class SFTCounts:
    truncated: int = 0  # kept rows that were cut to max_len
    skipped: int = 0  # rows with no response token left (after truncation)
    conversations: dict[str, int] = field(default_factory=dict)  # ConversationCounts.summary()


@dataclass
class SFTRows:
    """The rows as tables (in memory or memory-mapped from the data cache): ids in the token
    cache's dtype (uint16 under 65,536 ids), masks as bytes; a batch widens its rows."""

    input_ids: np.ndarray  # (N, L), EOS after the conversation
    response_mask: np.ndarray  # (N, L) bool, assistant content + its <|im_end|>
    pad_mask: np.ndarray  # (N, L) bool, the EOS padding after the conversation
    truncated: int
    skipped: int
    conversations: dict[str, int] = field(default_factory=dict)  # read and skipped (formats.py)


@dataclass
class TokenizedConversation:
    ids: list[int]
    response: list[bool]


class ConversationEncoder:
    """Turns conversations into ids + response flags; header and newline ids are computed once."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.newline = tokenizer.encode("\n")
        self.header_cache: dict[str, list[int]] = {}

    def header(self, role: str) -> list[int]:
        if role not in self.header_cache:
            self.header_cache[role] = self.tokenizer.encode(f"{IM_START}{role}\n")
        return self.header_cache[role]

    def encode(self, messages: list[dict[str, str]], contents: list[list[int]]) -> TokenizedConversation:
        out = TokenizedConversation([], [])

        def add(ids: list[int], is_response: bool) -> None:
            out.ids.extend(ids)
            out.response.extend([is_response] * len(ids))

        for i, (message, content) in enumerate(zip(messages, contents, strict=True)):
            is_assistant = message["role"] == "assistant"
            header = self.header(message["role"])
            add(header, False)
            add(content, is_assistant)
            add([self.tokenizer.im_end_id], is_assistant)
            if i < len(messages) - 1:
                add(self.newline, False)
        return out

    def encode_batch(self, conversations: list[list[dict[str, str]]]) -> list[TokenizedConversation]:
        contents = iter(self.tokenizer.encode_batch([m["content"] for conv in conversations for m in conv]))
        return [self.encode(conv, [next(contents) for _ in conv]) for conv in conversations]


def response_spans(conv: TokenizedConversation) -> list[tuple[int, int]]:
    """[start, end) of every assistant turn: the runs of response tokens."""
    flags = [*conv.response, False]
    starts = [i for i, flag in enumerate(flags) if flag and (i == 0 or not flags[i - 1])]
    ends = [i for i, flag in enumerate(flags) if not flag and i > 0 and flags[i - 1]]
    return list(zip(starts, ends, strict=True))


def one_turn_rows(conv: TokenizedConversation) -> list[TokenizedConversation]:
    """One conversation per assistant turn: everything before the turn as prompt, the turn as response."""
    return [
        TokenizedConversation(conv.ids[:end], [start <= i for i in range(end)])
        for start, end in response_spans(conv)
    ]


def cut_to(conv: TokenizedConversation, max_len: int) -> TokenizedConversation:
    """The first max_len tokens, then back to the last response token among them (nothing if none)."""
    kept = conv.response[:max_len]
    end = max((i + 1 for i, flag in enumerate(kept) if flag), default=0)
    return TokenizedConversation(conv.ids[:end], kept[:end])


def to_rows(
    kept: list[TokenizedConversation], eos_id: int, max_len: int, dtype: type
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad every conversation with EOS to max_len: (input_ids, response_mask, pad_mask)."""
    input_ids: np.ndarray = np.full((len(kept), max_len), eos_id, dtype=dtype)
    response_mask = np.zeros((len(kept), max_len), dtype=bool)
    lengths = np.array([len(conv.ids) for conv in kept])
    for row, conv in enumerate(kept):
        input_ids[row, : len(conv.ids)] = conv.ids
        response_mask[row, : len(conv.ids)] = conv.response
    pad_mask = np.arange(max_len)[None, :] >= lengths[:, None]
    return input_ids, response_mask, pad_mask


def sft_row_chunks(
    conversations: Iterable[list[dict[str, str]]],
    tokenizer: Tokenizer,
    max_len: int,
    one_turn_per_row: bool,
    counts: SFTCounts,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Rows of length max_len (one per conversation, or per assistant turn), at most ENCODE_CHUNK
    conversations and ENCODE_CHUNK_CHARS characters of messages at a time, so memory is bounded by
    a chunk; rows left without a response token are skipped. `counts` is updated as the rows are made."""
    if max_len < 1:
        raise UsageError(f"SFT row length must be at least 1, got {max_len}")
    encoder = ConversationEncoder(tokenizer)
    dtype = stream_dtype(tokenizer.vocab_size)
    for chunk in chunked(conversations, _characters, ENCODE_CHUNK, ENCODE_CHUNK_CHARS):
        encoded = encoder.encode_batch(chunk)
        if one_turn_per_row:
            encoded = [row for conv in encoded for row in one_turn_rows(conv)]
        kept = []
        for conv in encoded:
            too_long = len(conv.ids) > max_len
            conv = cut_to(conv, max_len)
            if not conv.ids:
                counts.skipped += 1
                continue
            kept.append(conv)
            counts.truncated += too_long
        if kept:
            yield to_rows(kept, tokenizer.eos_id, max_len, dtype)


def _characters(conversation: list[dict[str, str]]) -> int:
    return sum(len(message["content"]) for message in conversation)


def no_rows_error(max_len: int, skipped: int) -> UsageError:
    return UsageError(
        f"no SFT conversation has an assistant answer within {max_len} tokens "
        f"({skipped} skipped); raise {named('seq_len')} or check the conversations"
    )


def build_sft_rows(
    conversations: Iterable[list[dict[str, str]]],
    tokenizer: Tokenizer,
    max_len: int,
    one_turn_per_row: bool = False,
) -> SFTRows:
    """The rows of sft_row_chunks, in memory."""
    counts = SFTCounts()
    chunks = list(sft_row_chunks(conversations, tokenizer, max_len, one_turn_per_row, counts))
    if not chunks:
        raise no_rows_error(max_len, counts.skipped)
    input_ids, response_mask, pad_mask = (np.concatenate(parts) for parts in zip(*chunks, strict=True))
    return SFTRows(input_ids, response_mask, pad_mask, counts.truncated, counts.skipped)
