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

from dataclasses import dataclass

import torch

from ..errors import UsageError, named
from ..tokenizer import IM_START, Tokenizer

ENCODE_CHUNK = 4096  # conversations tokenized (in parallel) at a time


@dataclass
class SFTRows:
    input_ids: torch.Tensor  # (N, L) int64, EOS after the conversation
    response_mask: torch.Tensor  # (N, L) bool, assistant content + its <|im_end|>
    pad_mask: torch.Tensor  # (N, L) bool, the EOS padding after the conversation
    truncated: int  # kept rows that were cut to max_len
    skipped: int  # rows with no response token left (after truncation)


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


def to_rows(kept: list[TokenizedConversation], eos_id: int, max_len: int) -> tuple[torch.Tensor, ...]:
    """Pad every conversation with EOS to max_len: (input_ids, response_mask, pad_mask)."""
    input_ids = torch.full((len(kept), max_len), eos_id, dtype=torch.int64)
    response_mask = torch.zeros((len(kept), max_len), dtype=torch.bool)
    lengths = torch.tensor([len(conv.ids) for conv in kept])
    for row, conv in enumerate(kept):
        input_ids[row, : len(conv.ids)] = torch.tensor(conv.ids, dtype=torch.int64)
        response_mask[row, : len(conv.ids)] = torch.tensor(conv.response, dtype=torch.bool)
    pad_mask = torch.arange(max_len)[None, :] >= lengths[:, None]
    return input_ids, response_mask, pad_mask


def build_sft_rows(
    conversations: list[list[dict[str, str]]],
    tokenizer: Tokenizer,
    max_len: int,
    one_turn_per_row: bool = False,
) -> SFTRows:
    """Rows of length max_len (one per conversation, or per assistant turn); rows left without a
    response token are skipped."""
    if max_len < 1:
        raise UsageError(f"SFT row length must be at least 1, got {max_len}")
    encoder = ConversationEncoder(tokenizer)
    chunks: list[tuple[torch.Tensor, ...]] = []  # rows are built chunk by chunk to bound Python memory
    truncated = skipped = 0
    for start in range(0, len(conversations), ENCODE_CHUNK):
        encoded = encoder.encode_batch(conversations[start : start + ENCODE_CHUNK])
        if one_turn_per_row:
            encoded = [row for conv in encoded for row in one_turn_rows(conv)]
        kept = []
        for conv in encoded:
            too_long = len(conv.ids) > max_len
            conv = cut_to(conv, max_len)
            if not conv.ids:
                skipped += 1
                continue
            kept.append(conv)
            truncated += too_long
        if kept:
            chunks.append(to_rows(kept, tokenizer.eos_id, max_len))
    if not chunks:
        raise UsageError(
            f"no SFT conversation has an assistant answer within {max_len} tokens "
            f"({skipped} skipped); raise {named('seq_len')} or check the conversations"
        )
    input_ids, response_mask, pad_mask = (torch.cat(parts) for parts in zip(*chunks, strict=True))
    return SFTRows(input_ids, response_mask, pad_mask, truncated, skipped)
