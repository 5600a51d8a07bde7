"""Diffusion SFT: LLaDA's masked-answer objective with the pad policy's weights (docs/algorithms.md
section 6)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..model.transformer import Transformer
from ..objective_configs import DiffusionSFTConfig
from .losses import LossOutput, SFTBatch, plain_cross_entropy
from .masking import apply_mask, mask_probability, padding_attention_mask, sample_mask, uniform


@dataclass(frozen=True, kw_only=True)
class DiffusionSFTObjective(DiffusionSFTConfig):
    """LLaDA SFT: the prompt is never masked; loss = mean over rows of sum w CE / p_b / answer_len_b,
    answer_len_b = sum of w over the row's answer, w = 1 for an answer token and for padding the
    pad policy's weight (section 6)."""

    mask_id: int
    eps: float = 1e-3  # smallest mask rate, as in pretraining

    def __call__(
        self, model: Transformer, batch: SFTBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        x0, pad = batch.input_ids, batch.pad_mask
        answer, weight = self.answer(batch), self.token_weights(pad)
        p = mask_probability(self.draw_t(x0.shape[0], generator, x0.device), "linear", self.eps)
        masked = sample_mask(answer, p, generator)
        if self.complementary_masking:
            # The twin row masks exactly the response tokens the first left clean: with p' = 1 - p.
            twin = answer & ~masked
            x0, pad, answer, weight = (torch.cat((a, a)) for a in (x0, pad, answer, weight))
            masked = torch.cat((masked, twin))
            p = torch.cat((p, (1.0 - p).clamp(min=self.eps)))
        answer_len = (weight * answer).sum(dim=1).clamp(min=1)
        attn_mask = padding_attention_mask(pad) if self.pad_policy == "ignore" else None
        ce = plain_cross_entropy(model, x0, apply_mask(x0, masked, self.mask_id), masked, attn_mask)
        row_weight = weight / (p * answer_len)[:, None]
        loss = (ce * row_weight[masked]).sum() / x0.shape[0]
        trained = weight * masked
        metrics: dict[str, float | Tensor] = {
            "mask_rate": (masked.sum() / answer.sum().clamp(min=1)).detach(),
            # the share of the trained weight that is EOS padding rather than answer
            "pad_weight_share": ((trained * pad).sum() / trained.sum().clamp(min=1e-12)).detach(),
        }
        return LossOutput(loss, (~batch.pad_mask).sum(), metrics)

    def answer(self, batch: SFTBatch) -> Tensor:
        """(B, L) bool: the positions trained as answer: the response, and the padding unless ignored."""
        if self.pad_policy == "ignore":
            return batch.response_mask & ~batch.pad_mask
        return batch.response_mask | batch.pad_mask

    def token_weights(self, pad: Tensor) -> Tensor:
        """(B, L) float: 1 for answer tokens; each EOS of the padding 1 (eos), or its row's share of
        pad_tokens (capped: a row's padding weighs min(pad_tokens, its length) answer tokens)."""
        if self.pad_policy != "capped":
            return torch.ones_like(pad, dtype=torch.float32)
        share = (self.pad_tokens / pad.sum(dim=1, keepdim=True).clamp(min=1)).clamp(max=1.0)
        return torch.where(pad, share, 1.0)

    def draw_t(self, rows: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """t ~ U[0, 1), or U[a, b) with a mask-ratio band."""
        t = uniform((rows,), generator, device)
        if self.mask_ratio_band is None:
            return t
        low, high = self.mask_ratio_band
        return low + (high - low) * t
