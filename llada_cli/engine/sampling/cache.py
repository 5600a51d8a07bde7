"""The model calls of diffusion sampling: a full pass, or Fast-dLLM's prefix/dual KV cache; CFG on top.

A step only needs the logits of the current block [start, end). Without a cache every step
runs the whole sequence. With a cache, the first step of a block runs the whole sequence
(its logits serve that step) and keeps keys/values:
- prefix: of the columns before the block; later steps run the block and everything after it;
- dual: also of the columns after the block; later steps run the block alone.
Attention is bidirectional, so these entries go stale while the block changes: the
approximation Fast-dLLM accepts, bounded by refreshing them at every block (docs/algorithms.md 8).

Block-causal attention (for runs trained with block diffusion, section 7): columns are grouped
in blocks of block_length counted from the answer's start (the prompt's blocks count back from
it), and a column sees the columns of its own block and of earlier ones, as clean blocks did in
training. Finished blocks then never see what comes after them, so their keys/values are final:
with a cache they are computed once (in one pass over each block as it is finished) and every
step runs the current block alone. That cache is exact: the same logits as running everything.
With CFG the model sees 2R rows: R conditional ones, then R with the prompt replaced by the mask.

Under a logit shift (docs/algorithms.md section 11) the block's first column is predicted by the
state of the column before the block. Steps that do not run that column read the state kept from
the pass that last computed it: the block's first pass, or, block-causally, the pass that made the
previous block final (so the exact cache stays exact).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import overload

import torch
import torch.nn.functional as F

from ..model.transformer import KV, Transformer
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


@overload
def doubled(tensor: torch.Tensor) -> torch.Tensor: ...
@overload
def doubled(tensor: torch.Tensor | None) -> torch.Tensor | None: ...
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


def block_causal_mask(
    queries: slice, keys: int, key_valid: torch.Tensor | None, prompt_width: int, block_length: int
) -> torch.Tensor:
    """(R or 1, 1, Q, K) bool: query columns `queries` see key columns [0, keys) of their own block
    and earlier ones (blocks counted from the answer's start), real keys only, and themselves."""
    device = key_valid.device if key_valid is not None else None
    columns = torch.arange(keys, device=device)
    block = (columns - prompt_width).div(block_length, rounding_mode="floor")
    q_columns = columns[queries]
    mask = block[None, :] <= block[queries][:, None]
    if key_valid is not None:
        mask = mask[None] & key_valid[:, None, :keys]
    return (mask | (q_columns[:, None] == columns[None, :]))[..., None, :, :].reshape(
        -1, 1, len(q_columns), keys
    )


class BlockForward:
    """Runs the model for one step of the current block and returns its logits (R, W, V).

    `visible_end`: the columns past it do not exist yet (semi_ar_origin appends blocks one at a
    time). `block_length`: decode block-causally in blocks of it (None: bidirectional).
    """

    def __init__(
        self,
        model: Transformer,
        cache: str,
        cfg_scale: float,
        mask_id: int,
        prompt_width: int,
        block_length: int | None = None,
    ) -> None:
        self.model, self.cache, self.cfg_scale = model, CACHES[cache], cfg_scale
        self.mask_id, self.prompt_width = mask_id, prompt_width
        self.block_length = block_length
        self.past: list[KV] | None = None
        self.before: torch.Tensor | None = None  # (R, 1, D): the state of the column before the block
        self.cached_until = 0  # block-causal cache: columns [0, cached_until) are final and kept

    @property
    def passes_per_call(self) -> int:
        return 2 if self.cfg_scale > 0 else 1

    @property
    def exact_cache(self) -> bool:
        return self.block_length is not None and self.cache.kept is not None

    def start_block(self) -> None:
        if not self.exact_cache:
            self.past, self.before = None, None

    def keep_rows(self, keep: torch.Tensor) -> None:
        """Rows leave the batch (their answer ended): drop their cached keys/values too."""
        keep = torch.cat((keep, keep)) if self.cfg_scale > 0 else keep
        if self.past is not None:
            self.past = [(k[keep], v[keep]) for k, v in self.past]
        if self.before is not None:
            self.before = self.before[keep]

    def logits(self, rows: Rows, start: int, end: int, visible_end: int | None = None) -> torch.Tensor:
        ids, positions, key_valid = self.inputs(rows)
        ids, positions = ids[:, :visible_end], positions[..., :visible_end]
        key_valid = None if key_valid is None else key_valid[:, :visible_end]
        if self.exact_cache:
            return self.guided(self._cached_block_causal(ids, positions, key_valid, start, end))
        if self.cache.kept is None or self.past is None:
            mask: torch.Tensor | None
            if self.block_length is not None:
                width = ids.shape[1]
                mask = block_causal_mask(
                    slice(0, width), width, key_valid, self.prompt_width, self.block_length
                )
            else:
                mask = None if key_valid is None else self_attention_mask(key_valid)
            logits, kv, hidden = run_model(self.model, ids, positions, None, mask, slice(start, end))
            if self.cache.kept is not None:
                self.past = self.cache.kept(kv, start, end)
                self.before = hidden[:, start - 1 : start] if start > 0 else None
        else:
            stop = None if self.cache.runs_suffix else end
            queries = ids[:, start:stop]
            mask = None
            if key_valid is not None:  # padding only lives among the cached prefix keys
                keys = self.past[0][0].shape[2] + queries.shape[1]
                mask = F.pad(key_valid[:, :start], (0, keys - start), value=True)[:, None, None, :]
            logits, _, _ = run_model(
                self.model,
                queries,
                positions[..., start:stop],
                self.past,
                mask,
                slice(0, end - start),
                self.before,
            )
        return self.guided(logits)

    def _cached_block_causal(
        self, ids: torch.Tensor, positions: torch.Tensor, key_valid: torch.Tensor | None, start: int, end: int
    ) -> torch.Tensor:
        """The current block's logits from the final keys/values of every column before it; the
        columns finished since the last call are run once first, to add theirs."""
        assert self.block_length is not None  # exact_cache: decoding block-causally
        if self.cached_until < start:
            new = slice(self.cached_until, start)
            new_mask = block_causal_mask(new, start, key_valid, self.prompt_width, self.block_length)
            _, self.past, hidden = run_model(
                self.model, ids[:, new], positions[..., new], self.past, new_mask, slice(0, 0)
            )
            self.before = hidden[:, -1:]
            self.cached_until = start
        mask = None
        if key_valid is not None:  # the current block sees every real column before it and itself
            mask = key_valid[:, None, None, :end]
        logits, _, _ = run_model(
            self.model,
            ids[:, start:end],
            positions[..., start:end],
            self.past,
            mask,
            slice(0, end - start),
            self.before,
        )
        return logits

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
