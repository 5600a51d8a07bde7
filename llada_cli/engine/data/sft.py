"""SFT rows: ChatML conversations as fixed-length token rows with exact response masks.

Each message is tokenized piece by piece (header, content, <|im_end|>), so we know which tokens
belong to assistant turns without searching the ids afterwards. A row is

    <|im_start|>user\\n ... <|im_end|>\\n<|im_start|>assistant\\n ... <|im_end|> EOS EOS ...

The response is every assistant turn's content and its closing <|im_end|>. The newline after
the last <|im_end|> is left out, so no visible prompt token sits between the final answer and
the EOS padding (a diffusion model must not be told where the answer ends). See ALGORITHMS.md §6.
"""

from dataclasses import dataclass

import torch

from llada_cli.engine.errors import UsageError
from llada_cli.engine.tokenizer import IM_START, Tokenizer

ENCODE_CHUNK = 4096  # conversations tokenized (in parallel) at a time


@dataclass
class SFTRows:
    input_ids: torch.Tensor  # (N, L) int64, EOS after the conversation
    response_mask: torch.Tensor  # (N, L) bool, assistant content + its <|im_end|>
    pad_mask: torch.Tensor  # (N, L) bool, the EOS padding after the conversation
    truncated: int  # kept rows that were cut to max_len
    skipped: int  # conversations with no response token left (after truncation)


@dataclass
class TokenizedConversation:
    ids: list[int]
    response: list[bool]
    headers: list[tuple[int, int]]  # [start, end) of every "<|im_start|>role\n"


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
        out = TokenizedConversation([], [], [])

        def add(ids: list[int], is_response: bool) -> None:
            out.ids.extend(ids)
            out.response.extend([is_response] * len(ids))

        for i, (message, content) in enumerate(zip(messages, contents, strict=True)):
            is_assistant = message["role"] == "assistant"
            header = self.header(message["role"])
            out.headers.append((len(out.ids), len(out.ids) + len(header)))
            add(header, False)
            add(content, is_assistant)
            add([self.tokenizer.im_end_id], is_assistant)
            if i < len(messages) - 1:
                add(self.newline, False)
        return out

    def encode_batch(self, conversations: list[list[dict[str, str]]]) -> list[TokenizedConversation]:
        contents = iter(self.tokenizer.encode_batch([m["content"] for conv in conversations for m in conv]))
        return [self.encode(conv, [next(contents) for _ in conv]) for conv in conversations]


def truncation_point(conv: TokenizedConversation, max_len: int) -> int:
    """Where to cut: max_len, moved back to a header's start if the header would be cut or end the row."""
    for start, end in conv.headers:
        if start < max_len <= end:
            return start
    return max_len


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


def build_sft_rows(conversations: list[list[dict[str, str]]], tokenizer: Tokenizer, max_len: int) -> SFTRows:
    """Rows of length max_len; conversations left without any response token are skipped."""
    if max_len < 1:
        raise UsageError(f"SFT row length must be at least 1, got {max_len}")
    encoder = ConversationEncoder(tokenizer)
    chunks: list[tuple[torch.Tensor, ...]] = []  # rows are built chunk by chunk to bound Python memory
    truncated = skipped = 0
    for start in range(0, len(conversations), ENCODE_CHUNK):
        kept = []
        for conv in encoder.encode_batch(conversations[start : start + ENCODE_CHUNK]):
            too_long = len(conv.ids) > max_len
            if too_long:
                cut = truncation_point(conv, max_len)
                conv = TokenizedConversation(conv.ids[:cut], conv.response[:cut], [])
            if not any(conv.response):
                skipped += 1
                continue
            kept.append(conv)
            truncated += too_long
        if kept:
            chunks.append(to_rows(kept, tokenizer.eos_id, max_len))
    if not chunks:
        raise UsageError(
            f"no SFT conversation has an assistant answer within {max_len} tokens "
            f"({skipped} skipped); raise --seq-len or check the conversations"
        )
    input_ids, response_mask, pad_mask = (torch.cat(parts) for parts in zip(*chunks, strict=True))
    return SFTRows(input_ids, response_mask, pad_mask, truncated, skipped)
