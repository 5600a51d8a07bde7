"""Diffusion SFT: LLaDA's masked-answer objective with the pad policy's weights, in full or block
form, with an optional CAP confidence term (docs/algorithms.md section 6)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model.transformer import Transformer
from ..objective_configs import DiffusionSFTConfig
from .losses import LossOutput, SFTBatch, bdlm_logits, plain_logits
from .masking import apply_mask, mask_probability, padding_attention_mask, sample_mask, uniform


@dataclass(frozen=True, kw_only=True)
class DiffusionSFTObjective(DiffusionSFTConfig):
    """LLaDA SFT: the prompt is never masked; loss = mean over rows of sum w CE / p / answer_len_b,
    answer_len_b = sum of w over the row's answer, w = 1 for an answer token and for padding the
    pad policy's weight, p the mask probability of the token's row (full form) or block (block
    form); plus cap_weight times the CAP term (section 6)."""

    mask_id: int
    eps: float = 1e-3  # smallest mask rate, as in pretraining

    def __call__(
        self, model: Transformer, batch: SFTBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        x0, pad = batch.input_ids, batch.pad_mask
        answer, weight = self.answer(batch), self.token_weights(pad)
        # one t per row, or per block of the answer (each block is its own masked-diffusion ELBO)
        block, blocks = self.answer_blocks(batch.response_mask)
        t = self.draw_t((x0.shape[0], blocks), generator, x0.device)
        p = mask_probability(t, "linear", self.eps)
        p = p.expand_as(x0) if block is None else p.gather(1, block.clamp(min=0))
        masked = sample_mask(answer, p, generator)
        if self.complementary_masking:
            # The twin row masks exactly the response tokens the first left clean: with p' = 1 - p.
            twin = answer & ~masked
            x0, pad, answer, weight = (torch.cat((a, a)) for a in (x0, pad, answer, weight))
            block = None if block is None else torch.cat((block, block))
            masked = torch.cat((masked, twin))
            p = torch.cat((p, (1.0 - p).clamp(min=self.eps)))
        answer_len = (weight * answer).sum(dim=1).clamp(min=1)
        xt = apply_mask(x0, masked, self.mask_id)
        if block is None:
            attn_mask = padding_attention_mask(pad) if self.pad_policy == "ignore" else None
            logits = plain_logits(model, xt, masked, attn_mask)
        else:
            # with padding ignored each pad is a document of its own: it sees itself only
            length = x0.shape[1]
            own = length + torch.arange(length, device=x0.device)
            doc_ids = torch.where(pad, own, 0) if self.pad_policy == "ignore" else None
            logits = bdlm_logits(model, x0, xt, masked, block, doc_ids)
        ce = F.cross_entropy(logits, x0[masked], reduction="none")
        token_weight = (weight / (p * answer_len[:, None]))[masked]
        loss = (ce * token_weight).sum() / x0.shape[0]
        trained = weight * masked
        metrics: dict[str, float | Tensor] = {
            "mask_rate": (masked.sum() / answer.sum().clamp(min=1)).detach(),
            # the share of the trained weight that is EOS padding rather than answer
            "pad_weight_share": ((trained * pad).sum() / trained.sum().clamp(min=1e-12)).detach(),
        }
        if self.cap_weight > 0:
            confidence = cap_entropy(logits, x0[masked], weight[masked])
            loss = loss + self.cap_weight * confidence
            metrics["cap_entropy"] = confidence.detach()
        return LossOutput(loss, batch.tokens, metrics)

    def for_validation(self) -> DiffusionSFTObjective:
        """The SFT loss alone: the CAP term is a training aid, not part of the bound."""
        return replace(self, cap_weight=0.0)

    def answer(self, batch: SFTBatch) -> Tensor:
        """(B, L) bool: the positions trained as answer: the response, and the padding unless ignored."""
        if self.pad_policy == "ignore":
            return batch.answer
        return batch.response_mask | batch.pad_mask

    def answer_blocks(self, response: Tensor) -> tuple[Tensor | None, int]:
        """(B, L) each column's block in the block form, counted from the row's first response
        token (negative in the prompt) as block-causal decoding counts them from the answer's start
        (sampling/cache.py), and how many blocks an answer can span; (None, 1) in the full form."""
        if self.sft_form != "block" or self.block_size is None:
            return None, 1
        start = response.int().argmax(dim=1, keepdim=True)
        column = torch.arange(response.shape[1], device=response.device)
        block = (column - start).div(self.block_size, rounding_mode="floor")
        return block, -(-response.shape[1] // self.block_size)

    def token_weights(self, pad: Tensor) -> Tensor:
        """(B, L) float: 1 for answer tokens; each EOS of the padding 1 (eos), or its row's share of
        pad_tokens (capped: a row's padding weighs min(pad_tokens, its length) answer tokens)."""
        if self.pad_policy != "capped":
            return torch.ones_like(pad, dtype=torch.float32)
        share = (self.pad_tokens / pad.sum(dim=1, keepdim=True).clamp(min=1)).clamp(max=1.0)
        return torch.where(pad, share, 1.0)

    def draw_t(
        self, shape: tuple[int, int], generator: torch.Generator | None, device: torch.device
    ) -> Tensor:
        """t ~ U[0, 1), or U[a, b) with a mask-ratio band."""
        t = uniform(shape, generator, device)
        if self.mask_ratio_band is None:
            return t
        low, high = self.mask_ratio_band
        return low + (high - low) * t


def cap_entropy(logits: Tensor, targets: Tensor, weight: Tensor) -> Tensor:
    """The CAP confidence term (LLaDA 2.0-CAP, dParallel): the mean entropy of the predictions at
    the masked positions whose argmax is already the right token, each weighted as in the SFT
    loss; 0 when none is right. Lowering it sharpens what the model knows, so threshold decoding
    commits more slots per step, and leaves the wrong predictions to the cross entropy."""
    right = weight * (logits.argmax(dim=-1) == targets)  # no grad flows through the choice
    log_p = F.log_softmax(logits, dim=-1)
    entropy = -(log_p.exp() * log_p).sum(dim=-1)
    return (entropy * right).sum() / right.sum().clamp(min=1e-12)
