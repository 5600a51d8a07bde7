"""The model calls of diffusion sampling: a full pass, or Fast-dLLM's prefix/dual KV cache; CFG on top.

A step only needs the logits of the current block [start, end). Without a cache every step
runs the whole sequence. With a cache, the first step of a block runs the whole sequence
(its logits serve that step) and keeps keys/values:
- prefix: of the columns before the block; later steps run the block and everything after it;
- dual: also of the columns after the block; later steps run the block alone.
Attention is bidirectional, so these entries go stale while the block changes: the
approximation Fast-dLLM accepts, bounded by refreshing them at every block (docs/algorithms.md 8).
With CFG the model sees 2R rows: R conditional ones, then R with the prompt replaced by the mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..model import KV
from .common import run_model, self_attention_mask


@dataclass
class Rows:
    """The rows of the batch still decoding, in the layout the model sees."""

    index: torch.Tensor  # (R,) row numbers in the caller's batch
    x: torch.Tensor  # (R, L): left-padded prompt ++ generated region
    positions: torch.Tensor  # (L,) shared by all rows, or (R, L) when prompts were padded
    key_valid: torch.Tensor | None  # (R, L) False at padding; None when there is none

    def select(self, keep: torch.Tensor) -> Rows:
        return Rows(
            index=self.index[keep],
            x=self.x[keep],
            positions=self.positions if self.positions.dim() == 1 else self.positions[keep],
            key_valid=None if self.key_valid is None else self.key_valid[keep],
        )


def doubled(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """Per-row tensors repeated for the unconditional half of a CFG batch."""
    if tensor is None or tensor.dim() == 1:
        return tensor
    return torch.cat((tensor, tensor))


def _prefix(kv: list[KV], start: int, end: int) -> list[KV]:
    """The keys/values of the columns before the block."""
    return [(k[:, :, :start], v[:, :, :start]) for k, v in kv]


def _prefix_and_suffix(kv: list[KV], start: int, end: int) -> list[KV]:
    """Before and after the block: bidirectional attention ignores the order of keys, so the two
    parts simply sit side by side."""
    return [
        (
            torch.cat((k[:, :, :start], k[:, :, end:]), dim=2),
            torch.cat((v[:, :, :start], v[:, :, end:]), dim=2),
        )
        for k, v in kv
    ]


@dataclass(frozen=True)
class CachePolicy:
    """What the first pass of a block keeps, and how far the later steps' queries reach."""

    kept: Callable[[list[KV], int, int], list[KV]] | None  # None: no cache, every step runs everything
    runs_suffix: bool  # later steps run the columns after the block too (they are not cached)


CACHES: dict[str, CachePolicy] = {
    "none": CachePolicy(kept=None, runs_suffix=True),
    "prefix": CachePolicy(kept=_prefix, runs_suffix=True),
    "dual": CachePolicy(kept=_prefix_and_suffix, runs_suffix=False),
}


class BlockForward:
    """Runs the model for one step of the current block and returns its logits (R, W, V)."""

    def __init__(
        self, model: nn.Module, cache: str, cfg_scale: float, mask_id: int, prompt_width: int
    ) -> None:
        self.model, self.cache, self.cfg_scale = model, CACHES[cache], cfg_scale
        self.mask_id, self.prompt_width = mask_id, prompt_width
        self.past: list[KV] | None = None

    @property
    def passes_per_call(self) -> int:
        return 2 if self.cfg_scale > 0 else 1

    def start_block(self) -> None:
        self.past = None

    def logits(self, rows: Rows, start: int, end: int) -> torch.Tensor:
        ids, positions, key_valid = self.inputs(rows)
        if self.cache.kept is None or self.past is None:
            mask = None if key_valid is None else self_attention_mask(key_valid)
            logits, kv = run_model(self.model, ids, positions, None, mask, slice(start, end))
            if self.cache.kept is not None:
                self.past = self.cache.kept(kv, start, end)
        else:
            stop = None if self.cache.runs_suffix else end
            queries = ids[:, start:stop]
            mask = None
            if key_valid is not None:  # padding only lives among the cached prefix keys
                keys = self.past[0][0].shape[2] + queries.shape[1]
                mask = F.pad(key_valid[:, :start], (0, keys - start), value=True)[:, None, None, :]
            logits, _ = run_model(
                self.model, queries, positions[..., start:stop], self.past, mask, slice(0, end - start)
            )
        return self.guided(logits)

    def inputs(self, rows: Rows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if self.cfg_scale == 0:
            return rows.x, rows.positions, rows.key_valid
        unconditional = rows.x.clone()
        unconditional[:, : self.prompt_width] = self.mask_id
        return torch.cat((rows.x, unconditional)), doubled(rows.positions), doubled(rows.key_valid)

    def guided(self, logits: torch.Tensor) -> torch.Tensor:
        if self.cfg_scale == 0:
            return logits
        conditional, unconditional = logits.chunk(2)
        return unconditional + (self.cfg_scale + 1) * (conditional - unconditional)
