"""What both samplers share: the result type, trace events, left padding, random draws and the model call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..model.transformer import KV, Transformer, aligned


@dataclass
class Generation:
    """One prompt's answer and what it cost."""

    token_ids: list[int]  # the new tokens only, cut before the first stop token
    forward_passes: int  # model calls made while this row was decoding (CFG counts 2 per step)
    steps: int  # denoising steps (diffusion) or decode steps (AR)
    seconds: float  # wall time from the start of the call until this row was done
    finished: bool  # ended by a stop token rather than by length

    @property
    def tokens_per_forward(self) -> float:
        return len(self.token_ids) / max(self.forward_passes, 1)


@dataclass(frozen=True)
class TraceEvent:
    """A token written into the generated region: committed at a mask, or edited over an earlier token."""

    step: int  # global step index, counted across blocks
    position: int  # position within the generated region
    token_id: int
    kind: Literal["commit", "edit"]
    row: int = 0  # which prompt of the batch


# Called after every step with (step, current generated region (B, gen_length)); the tensor is a copy.
StepCallback = Callable[[int, torch.Tensor], None] | None


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def model_context(model: Transformer) -> int:
    """How many positions the model can attend over: its training length, stretched by RoPE scaling."""
    config = model.config
    return int(config.seq_len * max(1.0, config.rope_scaling))


@dataclass
class PaddedPrompts:
    """Prompts left-padded to one length, so every row's generated region starts at the same column."""

    ids: torch.Tensor  # (B, P)
    pad: torch.Tensor  # (B,) padding columns per row

    @property
    def padded(self) -> bool:
        return bool(self.pad.any())

    def positions(self, length: int) -> torch.Tensor:
        """Rotary positions of `length` columns: 0 at each row's first real token; (L,) without padding."""
        columns = torch.arange(length, device=self.ids.device)
        if not self.padded:
            return columns
        return (columns[None, :] - self.pad[:, None]).clamp(min=0)

    def key_valid(self, length: int) -> torch.Tensor | None:
        """(B, L) True where a column holds a real token; None without padding (no mask needed)."""
        if not self.padded:
            return None
        return torch.arange(length, device=self.ids.device)[None, :] >= self.pad[:, None]


def left_pad(prompts: list[list[int]], pad_id: int, device: torch.device) -> PaddedPrompts:
    width = max(len(prompt) for prompt in prompts)
    rows = [[pad_id] * (width - len(prompt)) + list(prompt) for prompt in prompts]
    pad = torch.tensor([width - len(prompt) for prompt in prompts], device=device)
    return PaddedPrompts(torch.tensor(rows, dtype=torch.long, device=device), pad)


def self_attention_mask(key_valid: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) mask over a full sequence: real keys only, and every query sees itself.

    The diagonal keeps padding queries from having no key at all (SDPA would return NaN there).
    """
    length = key_valid.shape[1]
    diagonal = torch.eye(length, dtype=torch.bool, device=key_valid.device)
    return key_valid[:, None, None, :] | diagonal


def run_model(
    model: Transformer,
    ids: torch.Tensor,
    positions: torch.Tensor,
    past: list[KV] | None,
    attn_mask: torch.Tensor | None,
    window: slice,
    before: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[KV], torch.Tensor]:
    """float32 logits of the tokens at the columns in `window` only (the head is skipped elsewhere),
    the keys/values and the hidden states. Under a logit shift the first column reads `before`,
    the state of the column before `ids` (model.aligned)."""
    hidden, kv = model.hidden_states(ids, positions, attn_mask, past)
    return model.lm_head(aligned(hidden, model.config, before)[:, window]).float(), kv, hidden


def generations(
    tokens: list[list[int]],
    stop_ids: set[int],
    forward_passes: torch.Tensor,
    steps: torch.Tensor,
    seconds: list[float],
) -> list[Generation]:
    """Cut each row before its first stop token and package the per-row counts."""
    results = []
    for row, ids in enumerate(tokens):
        end = next((i for i, token in enumerate(ids) if token in stop_ids), len(ids))
        results.append(
            Generation(
                token_ids=ids[:end],
                forward_passes=int(forward_passes[row]),
                steps=int(steps[row]),
                seconds=seconds[row],
                finished=end < len(ids),
            )
        )
    return results


def cut_at_stops(text: str, stops: tuple[str, ...]) -> str:
    """`text` up to the first occurrence of any stop string (an API's `stop`, lm-eval's `until`)."""
    ends = [text.find(stop) for stop in stops if stop and stop in text]
    return text[: min(ends)] if ends else text
