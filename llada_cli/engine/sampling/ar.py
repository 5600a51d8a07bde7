"""Autoregressive sampling with a KV cache (docs/algorithms.md section 9).

Prompts are left-padded so that every row's next token sits in the same column; padding
keys are masked out and rotary positions start at 0 on each row's first real token, so a
row decodes exactly as it would alone. Rows that hit a stop token leave the batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..model.transformer import KV, Transformer
from ..objectives.masking import uniform
from .common import (
    Generation,
    PaddedPrompts,
    generations,
    left_pad,
    model_context,
    model_device,
    run_model,
    self_attention_mask,
)
from .settings import ARSettings, resolve_ar_settings, resolved


def penalize_repeats(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty: seen tokens' positive logits divided by the penalty, negative multiplied."""
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def sample_filtered(
    logits: torch.Tensor, top_k: int, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """One token per row from softmax(logits), restricted to the top-k tokens and the top-p nucleus.

    The nucleus keeps a token while the mass of the strictly more likely tokens is below top_p.
    Sampling inverts the CDF with one uniform per row (drawn on the CPU from `generator`).
    """
    ordered, order = logits.sort(dim=-1, descending=True)
    if top_k:
        ordered[:, top_k:] = -torch.inf
    probs = F.softmax(ordered.double(), dim=-1)
    if top_p < 1:
        before = probs.cumsum(dim=-1) - probs
        probs = probs.masked_fill(before >= top_p, 0.0)
    cdf = probs.cumsum(dim=-1)
    target = uniform((logits.shape[0], 1), generator, logits.device, torch.float64) * cdf[:, -1:]
    pick = torch.searchsorted(cdf, target, right=True)
    # Rounding at the very top of the CDF must not land on a removed token (the kept ones come first).
    pick = torch.minimum(pick, (probs > 0).sum(dim=-1, keepdim=True) - 1)
    return order.gather(-1, pick).squeeze(-1)


def next_tokens(
    logits: torch.Tensor, settings: ARSettings, seen: torch.Tensor | None, generator: torch.Generator | None
) -> torch.Tensor:
    """(R,) next token per row from the last position's logits (R, V)."""
    if seen is not None:
        logits = penalize_repeats(logits, seen, settings.repetition_penalty)
    if settings.temperature == 0:
        return logits.argmax(dim=-1)
    return sample_filtered(logits / settings.temperature, settings.top_k, settings.top_p, generator)


def seen_tokens(prompts: PaddedPrompts, vocab_size: int) -> torch.Tensor:
    """(B, V) True for every token of each prompt (padding excluded), for the repetition penalty."""
    key_valid = prompts.key_valid(prompts.ids.shape[1])
    ids = prompts.ids if key_valid is None else prompts.ids.masked_fill(~key_valid, vocab_size)
    seen = torch.zeros(ids.shape[0], vocab_size + 1, dtype=torch.bool, device=ids.device)
    return seen.scatter_(1, ids, True)[:, :vocab_size]  # the extra column soaks up padding


@dataclass
class DecodingRows:
    """The rows still decoding, with everything the next cached step needs."""

    index: torch.Tensor  # (R,) row numbers in the caller's batch
    past: list[KV]
    key_valid: torch.Tensor | None  # (R, S) False at padding keys; None without padding
    next_position: torch.Tensor  # (R,) rotary position of the token fed next
    seen: torch.Tensor | None  # (R, V) for the repetition penalty; None when it is off

    def select(self, keep: torch.Tensor) -> DecodingRows:
        return DecodingRows(
            index=self.index[keep],
            past=[(k[keep], v[keep]) for k, v in self.past],
            key_valid=None if self.key_valid is None else self.key_valid[keep],
            next_position=self.next_position[keep],
            seen=None if self.seen is None else self.seen[keep],
        )

    def step(self, model: Transformer, new: torch.Tensor) -> torch.Tensor:
        """Feed one token per row through the cache; returns the next logits (R, V)."""
        if self.seen is not None:
            self.seen.scatter_(1, new[:, None], True)
        mask = None
        if self.key_valid is not None:
            self.key_valid = F.pad(self.key_valid, (0, 1), value=True)
            mask = self.key_valid[:, None, None, :]
        logits, self.past, _ = run_model(
            model, new[:, None], self.next_position[:, None], self.past, mask, slice(-1, None)
        )
        self.next_position = self.next_position + 1
        return logits[:, -1]


@torch.inference_mode()
def generate_ar(
    model: Transformer,
    prompts: list[list[int]],
    settings: ARSettings,
    stop_ids: set[int],
    generator: torch.Generator | None = None,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> list[Generation]:
    """Decode each prompt token by token until a stop id or max_new_tokens; one forward per token.
    `on_step(t, tokens)` sees the (B, t) tokens so far after each step (-1 after a row stopped)."""
    if not prompts:
        return []
    if min(len(prompt) for prompt in prompts) == 0:
        raise UsageError("a prompt is empty: AR sampling needs at least one prompt token to condition on")
    settings = resolve_ar_settings(settings, room=model_context(model) - max(len(p) for p in prompts))
    max_new_tokens = resolved(settings.max_new_tokens, "max_new_tokens")
    started = time.perf_counter()
    device = model_device(model)
    batch = left_pad(prompts, pad_id=0, device=device)
    count, width = batch.ids.shape
    key_valid = batch.key_valid(width)
    mask = None if key_valid is None else self_attention_mask(key_valid)
    logits, past, _ = run_model(model, batch.ids, batch.positions(width), None, mask, slice(-1, None))
    rows = DecodingRows(
        index=torch.arange(count, device=device),
        past=past,
        key_valid=key_valid,
        next_position=width - batch.pad,
        seen=seen_tokens(batch, model.config.vocab_size) if settings.repetition_penalty != 1 else None,
    )
    logits = logits[:, -1]
    tokens = torch.full((count, max_new_tokens), -1, dtype=torch.long, device=device)
    steps = torch.zeros(count, dtype=torch.long, device=device)
    seconds = [0.0] * count
    stop = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
    for t in range(max_new_tokens):
        new = next_tokens(logits, settings, rows.seen, generator)
        tokens[rows.index, t] = new
        steps[rows.index] += 1
        if on_step is not None:
            on_step(t + 1, tokens[:, : t + 1])
        going = ~torch.isin(new, stop) & (t + 1 < max_new_tokens)
        for row in rows.index[~going].tolist():
            seconds[row] = time.perf_counter() - started
        if not going.any():
            break
        if not going.all():
            rows, new = rows.select(going), new[going]
        logits = rows.step(model, new)
    # One forward per token: the prefill gave the first, each cached step the next.
    return generations(tokens.tolist(), stop_ids, steps, steps, seconds)
