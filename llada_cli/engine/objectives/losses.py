"""What every objective shares: the batches, the loss output, cross entropy at selected positions.

The head runs only on the positions that carry a loss, and cross entropy is computed in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model.transformer import Transformer, aligned
from .masking import bdlm_attention_mask, document_attention_mask


@dataclass
class LossOutput:
    loss: Tensor  # scalar to backpropagate
    tokens: int | Tensor  # real (non-pad) tokens in the batch, for tokens/s
    metrics: dict[str, float | Tensor]  # read once per optimizer step (no device sync per micro-batch)


@dataclass
class PretrainBatch:
    input_ids: Tensor  # (B, L) packed rows, EOS between documents


@dataclass
class SFTBatch:
    input_ids: Tensor  # (B, L)
    response_mask: Tensor  # (B, L) bool: assistant content including its <|im_end|>
    pad_mask: Tensor  # (B, L) bool: the EOS padding after the conversation

    @property
    def answer(self) -> Tensor:
        """(B, L) bool: the response tokens themselves, the padding left out."""
        return self.response_mask & ~self.pad_mask

    @property
    def tokens(self) -> Tensor:
        """The real (non-pad) tokens of the batch."""
        return (~self.pad_mask).sum()


@dataclass
class PairBatch:
    """Preference pairs: the same prompts answered as preferred (chosen) and not (rejected)."""

    chosen: SFTBatch
    rejected: SFTBatch


@dataclass
class PromptBatch:
    """GRPO's prompts; their answers are sampled during the step (training/rollouts.py)."""

    input_ids: Tensor  # (B, P) each prompt, then EOS
    lengths: Tensor  # (B,)
    index: Tensor  # (B,) each prompt's place in its prompt set, where its expected answer is


def pair_batch(*tables: Tensor) -> PairBatch:
    """Chosen (ids, response, pad) then rejected; each side cut to its own longest row."""
    return PairBatch(sft_batch(*tables[:3]), sft_batch(*tables[3:]))


def sft_batch(input_ids: Tensor, response_mask: Tensor, pad_mask: Tensor) -> SFTBatch:
    """Rows cut to the longest conversation of the batch, so EOS padding only reaches that length.

    LLaDA pads within the batch: padding every row to the row length would count dozens of EOS as
    answer, dilute short answers (the 1 / answer_len weight) and teach the model to stop early.
    """
    width = int((~pad_mask).sum(dim=1).max())
    return SFTBatch(input_ids[:, :width], response_mask[:, :width], pad_mask[:, :width])


def selected_logits(
    model: Transformer,
    input_ids: Tensor,
    select: Tensor,
    positions: Tensor | None = None,
    attn_mask: Tensor | None = None,
) -> Tensor:
    """Float32 logits (N, V) of the tokens at the selected positions, row-major; the head runs on
    those only (from the state before each of them under the model's logit shift)."""
    hidden, _ = model.hidden_states(input_ids, positions, attn_mask, past=None)
    return model.lm_head(aligned(hidden, model.config)[select]).float()


def selected_cross_entropy(
    model: Transformer,
    input_ids: Tensor,
    targets: Tensor,
    select: Tensor,
    positions: Tensor | None = None,
    attn_mask: Tensor | None = None,
) -> Tensor:
    """Float32 cross entropy at the selected positions, row-major."""
    logits = selected_logits(model, input_ids, select, positions, attn_mask)
    return F.cross_entropy(logits, targets[select], reduction="none")


def plain_logits(model: Transformer, xt: Tensor, masked: Tensor, attn_mask: Tensor | None) -> Tensor:
    """Logits at every masked position of x_t, the model seeing x_t alone."""
    return selected_logits(model, xt, masked, attn_mask=attn_mask)


def plain_cross_entropy(
    model: Transformer, x0: Tensor, xt: Tensor, masked: Tensor, attn_mask: Tensor | None
) -> Tensor:
    """CE of the clean token at every masked position of x_t, the model seeing x_t alone."""
    return F.cross_entropy(plain_logits(model, xt, masked, attn_mask), x0[masked], reduction="none")


def bdlm_logits(
    model: Transformer, x0: Tensor, xt: Tensor, masked: Tensor, block: Tensor, doc_ids: Tensor | None
) -> Tensor:
    """Logits at the masked positions of x_t, the model seeing [x_t ; x0] under the block rule
    (section 4), each column in block `block` ((L,), or (B, L) per row).

    Both halves carry positions 0..L-1. With a document mask the block rule is ANDed with
    "same document", the document ids repeated on both halves. Same order as plain_logits.
    Under the logit shift a block's first slot reads the clean copy of the column before it: the
    state that block-causal decoding has there (the previous block is final by then).
    """
    length = x0.shape[1]
    positions = torch.arange(length, device=x0.device).repeat(2)
    attn_mask = bdlm_attention_mask(block)
    if doc_ids is not None:
        attn_mask = attn_mask & document_attention_mask(torch.cat((doc_ids, doc_ids), dim=1), causal=False)
    hidden, _ = model.hidden_states(torch.cat((xt, x0), dim=1), positions, attn_mask, past=None)
    if model.config.logit_shift:
        sources = bdlm_shift_sources(block.expand_as(x0))
        hidden = hidden.gather(1, sources[:, :, None].expand(-1, -1, hidden.shape[-1]))
    return model.lm_head(hidden[:, :length][masked]).float()


def bdlm_shift_sources(block: Tensor) -> Tensor:
    """(B, L) the column of [x_t ; x0] whose state predicts each noisy column under the logit shift:
    the noisy column before it in its block, the clean column before a block's first slot, and
    column 0 itself for column 0."""
    length = block.shape[1]
    column = torch.arange(length, device=block.device).expand_as(block)
    starts_block = torch.zeros_like(block, dtype=torch.bool)
    starts_block[:, 1:] = block[:, 1:] != block[:, :-1]
    return torch.where(starts_block, length + column - 1, (column - 1).clamp(min=0))
