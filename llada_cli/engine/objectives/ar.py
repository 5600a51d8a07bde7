"""The autoregressive objectives: next-token cross entropy for pretraining, and for SFT on the
assistant's tokens only (docs/algorithms.md sections 2 and 6)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..model.transformer import Transformer
from ..objective_configs import ARPretrainConfig, ARSFTConfig
from .losses import LossOutput, PretrainBatch, SFTBatch, selected_cross_entropy
from .masking import document_attention_mask, document_ids


def next_token_loss(
    model: Transformer, input_ids: Tensor, is_target: Tensor, attn_mask: Tensor | None
) -> Tensor:
    """Mean CE of predicting token i + 1 from tokens <= i, over the i + 1 where is_target holds."""
    select = is_target[:, 1:]
    ce = selected_cross_entropy(model, input_ids[:, :-1], input_ids[:, 1:], select, attn_mask=attn_mask)
    return ce.sum() / select.sum().clamp(min=1)


@dataclass(frozen=True, kw_only=True)
class ARPretrainObjective(ARPretrainConfig):
    eos_id: int

    def __call__(
        self, model: Transformer, batch: PretrainBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        ids = batch.input_ids
        attn_mask = None
        if self.doc_attention_mask:
            attn_mask = document_attention_mask(document_ids(ids[:, :-1], self.eos_id), causal=True)
        loss = next_token_loss(model, ids, torch.ones_like(ids, dtype=torch.bool), attn_mask)
        return LossOutput(loss, ids.numel(), {})


@dataclass(frozen=True, kw_only=True)
class ARSFTObjective(ARSFTConfig):
    """Cross entropy on assistant tokens only: prompt and padding are never targets (section 6)."""

    def __call__(
        self, model: Transformer, batch: SFTBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        loss = next_token_loss(model, batch.input_ids, batch.answer, attn_mask=None)
        return LossOutput(loss, batch.tokens, {})
