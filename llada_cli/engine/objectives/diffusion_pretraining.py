"""Diffusion pretraining (docs/algorithms.md sections 2-5).

The loss is LLaDA's: cross entropy at the masked positions, weighted by the noise schedule, over
the token count. What varies is how the noise level is chosen and how masks are laid out:
- mask schedule (MASK_SCHEDULES): `iid_t`, a fresh t ~ U(0, 1) per row (per block in the
  curriculum), LLaDA 1.0; `wsd`, Nano-LLaDA's warmup-stable-decay of the mask ratio over
  training, t = r(step) for every row;
- block curriculum (`use_block_curriculum`, BLOCK_FORMS): the block size follows its own
  warmup-stable-decay phases; `bdlm` trains LLaDA 2.0's block diffusion ([x_t ; x0] under the
  block attention rule), `masked_blocks` masks whole blocks (Nano-LLaDA's form);
- an optional unlikelihood term against repeating the previous token (`repeat_penalty_weight`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model.transformer import Transformer
from ..objective_configs import DiffusionPretrainConfig
from ..schedules import ramped_weight, wsd_mask_ratio
from .losses import (
    LossOutput,
    PretrainBatch,
    bdlm_logits,
    plain_logits,
)
from .masking import (
    apply_mask,
    document_attention_mask,
    document_ids,
    equal_blocks,
    noise_level,
    sample_mask,
    uniform,
)

# Mask schedules: t for every (row, block) at a training step.
MASK_SCHEDULES: dict[str, Callable[..., Tensor]] = {
    "iid_t": lambda config, shape, step, generator, device: uniform(shape, generator, device),
    "wsd": lambda config, shape, step, generator, device: torch.full(
        shape, config.mask_ratio(step), device=device
    ),
}


@dataclass(frozen=True, kw_only=True)
class DiffusionPretrainObjective(DiffusionPretrainConfig):
    mask_id: int
    eos_id: int
    total_steps: int = 1  # the run's length: the schedules work in steps (step = progress * total)

    def mask_ratio(self, step: int) -> float:
        return wsd_mask_ratio(
            step,
            self.total_steps,
            self.wsd_min_mask_ratio,
            self.wsd_max_mask_ratio,
            self.wsd_warmup_ratio,
            self.wsd_stable_ratio,
        )

    def block_size(self, step: int, seq_len: int) -> int:
        """The curriculum's block size at this step; seq_len (one block) without the curriculum."""
        return self.curriculum_block(step, self.total_steps, seq_len)

    def __call__(
        self, model: Transformer, batch: PretrainBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        step = round(progress * self.total_steps)
        block_size = self.block_size(step, batch.input_ids.shape[1])
        x0 = self.maybe_shorten(batch.input_ids, generator)
        rows, length = x0.shape
        # With a document mask the EOS positions are visible in the attention pattern: never mask them.
        maskable = x0 != self.eos_id if self.doc_attention_mask else torch.ones_like(x0, dtype=torch.bool)
        if model.config.logit_shift:  # nothing before column 0 to predict it from: it stays clean
            maskable[:, 0] = False
        doc_ids = document_ids(x0, self.eos_id) if self.doc_attention_mask else None
        blocks = math.ceil(length / block_size)
        # One t per block (a single block without the curriculum), drawn once: mask AND weight use it.
        t = MASK_SCHEDULES[self.mask_schedule](self, (rows, blocks), step, generator, x0.device)
        if self.use_block_curriculum and self.block_curriculum_form == "masked_blocks":
            masked, weight = masked_blocks(maskable, t[:, 0], block_size, generator)
            p = weight.reciprocal()
        else:
            t = t[:, torch.arange(length, device=x0.device) // block_size]
            p, weight = noise_level(t, self.noise_schedule, self.iid_mask_eps, self.time_weighted_loss)
            masked = sample_mask(maskable, p, generator)
        xt = apply_mask(x0, masked, self.mask_id)
        if block_size >= length or self.block_curriculum_form == "masked_blocks":
            attn_mask = None if doc_ids is None else document_attention_mask(doc_ids, causal=False)
            logits = plain_logits(model, xt, masked, attn_mask)
        else:
            logits = bdlm_logits(model, x0, xt, masked, equal_blocks(length, block_size, x0.device), doc_ids)
        ce = F.cross_entropy(logits, x0[masked], reduction="none")
        weight = weight.expand_as(masked)[masked]
        total = (ce * weight).sum()
        loss = total / weight.sum().clamp(min=1e-12) if self.normalized_loss else total / x0.numel()
        metrics: dict[str, float | torch.Tensor] = {
            "mask_rate": masked.float().mean().detach(),
            "mask_ratio": p.float().mean().detach(),
        }
        if self.use_block_curriculum:
            metrics["block_size"] = float(block_size)
        penalty = ramped_weight(
            step,
            self.repeat_penalty_weight,
            self.repeat_penalty_delay_steps,
            self.repeat_penalty_warmup_steps,
        )
        if penalty > 0:
            unlikelihood = repeat_unlikelihood(logits, x0, masked, self.repeat_penalty_min_run, self.eos_id)
            loss = loss + penalty * unlikelihood
            metrics["repeat_unlikelihood"] = unlikelihood.detach()
        return LossOutput(loss, x0.numel(), metrics)

    def for_validation(self) -> DiffusionPretrainObjective:
        """The schedule's true ELBO (t ~ U(0,1), one block, full rows, w(t) weights, no extra terms),
        comparable across steps and runs whatever the training schedule.

        Only w(t) makes the loss a bound: 1/p under the cosine schedule, or the normalised mean, is not.
        """
        return replace(
            self,
            mask_schedule="iid_t",
            use_block_curriculum=False,
            variable_length_prob=0.0,
            time_weighted_loss=True,
            normalized_loss=False,
            repeat_penalty_weight=0.0,
        )

    def maybe_shorten(self, x0: Tensor, generator: torch.Generator | None) -> Tensor:
        """With probability variable_length_prob, keep only the first U{1..L} tokens of every row."""
        if self.variable_length_prob <= 0:
            return x0
        coin, fraction = uniform((2,), generator, torch.device("cpu")).tolist()
        if coin >= self.variable_length_prob:
            return x0
        return x0[:, : 1 + int(fraction * x0.shape[1])]


def masked_blocks(
    maskable: Tensor, ratio: Tensor, block_size: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Whole blocks masked: of the n blocks of a row that hold a maskable token, k = round(n * ratio)
    (at least 1) chosen uniformly; returns the mask and each row's weight n / k, the inverse of the
    probability that a given block is chosen."""
    rows, length = maskable.shape
    block_of = torch.arange(length, device=maskable.device) // block_size
    blocks = int(block_of[-1]) + 1
    has_maskable = torch.stack([maskable[:, block_of == b].any(dim=1) for b in range(blocks)], dim=1)
    available = has_maskable.sum(dim=1).clamp(min=1)
    chosen_count = (available * ratio).round().clamp(min=1).minimum(available)
    scores = uniform((rows, blocks), generator, maskable.device).masked_fill(~has_maskable, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)
    chosen = rank < chosen_count[:, None]
    masked = chosen[:, block_of] & maskable
    return masked, (available / chosen_count).float()[:, None]


def run_lengths(ids: Tensor) -> Tensor:
    """(B, L): the length of the run of identical tokens that ends at each position."""
    positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    starts = torch.ones_like(ids, dtype=torch.bool)
    starts[:, 1:] = ids[:, 1:] != ids[:, :-1]
    run_start = torch.cummax(torch.where(starts, positions, 0), dim=1).values
    return positions - run_start + 1


def repeat_unlikelihood(logits: Tensor, x0: Tensor, masked: Tensor, min_run: int, eos_id: int) -> Tensor:
    """Mean -log(1 - p(previous token)) at the masked positions where the text does not repeat the
    previous token but predicting it would make a run of at least `min_run` (Welleck et al.'s
    token unlikelihood, aimed at repeats). `logits` are those of the masked positions, row-major.

    Nano-LLaDA penalises the *correct* token where the text itself repeats; this never does.
    """
    previous = torch.roll(x0, 1, dims=1)
    previous_run = torch.roll(run_lengths(x0), 1, dims=1)
    first = torch.zeros_like(masked)
    first[:, 0] = True
    candidate = ~first & (x0 != previous) & (previous_run + 1 >= min_run) & (previous != eos_id)
    chosen = candidate[masked]
    if not chosen.any():
        return logits.new_zeros(())
    p = F.softmax(logits[chosen], dim=-1).gather(1, previous[masked][chosen][:, None]).squeeze(1)
    return -torch.log1p(-p.clamp(max=1 - 1e-6)).mean()
