"""Direct preference optimisation for both kinds (docs/algorithms.md section 14).

loss = -log sigmoid(beta * ((log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))))
with the reference the frozen base run; DPO-Positive (Pal et al., Smaug) also subtracts
beta * lambda * max(0, log ref(y_w|x) - log pi(y_w|x)) inside the sigmoid. AR: the exact
log-likelihood of the answer. Diffusion: an ELBO estimate instead (LLaDA 1.5): each answer scored
by `mc_num` masked samples, with VRPO's variance reduction: mask counts stratified over the
samples, and policy and reference scored on the same masked inputs, so their difference has little
of the masks' noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model.transformer import Transformer
from ..objective_configs import ARDPOConfig, DiffusionDPOConfig
from .losses import LossOutput, PairBatch, SFTBatch, selected_logits
from .masking import apply_mask, padding_attention_mask, uniform


def dpo_loss(
    policy: Tensor, reference: Tensor, beta: float, dpop_lambda: float = 0.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """`policy`, `reference`: (2, B) log-likelihoods of the chosen (row 0) and rejected answers.
    DPO-Positive takes beta * lambda * max(0, log ref(chosen) - log pi(chosen)) off the margin."""
    rewards = beta * (policy - reference)
    fallen = (reference[0] - policy[0]).clamp(min=0)
    margin = rewards[0] - rewards[1] - beta * dpop_lambda * fallen
    metrics = {
        "reward_chosen": rewards[0].mean().detach(),
        "reward_rejected": rewards[1].mean().detach(),
        "reward_accuracy": (margin > 0).float().mean().detach(),
    }
    return -F.logsigmoid(margin).mean(), metrics


def row_sums(values: Tensor, select: Tensor) -> Tensor:
    """(B,) the sum over each row of `values`, given row-major at the positions `select` holds."""
    rows = select.nonzero()[:, 0]
    return torch.zeros(select.shape[0], device=values.device).index_add(0, rows, values)


def answer_log_likelihood(model: Transformer, batch: SFTBatch) -> Tensor:
    """(B,) exact log p(answer | prompt) of a causal model: the answer's tokens from those before."""
    ids, target = batch.input_ids, batch.answer[:, 1:]
    logits = selected_logits(model, ids[:, :-1], target)
    logp = -F.cross_entropy(logits, ids[:, 1:][target], reduction="none")
    return row_sums(logp, target)


@dataclass(frozen=True, kw_only=True)
class ARDPOObjective(ARDPOConfig):
    reference: Transformer = field(repr=False, compare=False)

    def __call__(
        self, model: Transformer, batch: PairBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        sides = (batch.chosen, batch.rejected)
        policy = torch.stack([answer_log_likelihood(model, side) for side in sides])
        with torch.no_grad():
            reference = torch.stack([answer_log_likelihood(self.reference, side) for side in sides])
        loss, metrics = dpo_loss(policy, reference, self.beta, self.dpop_lambda)
        return LossOutput(loss, batch.chosen.tokens + batch.rejected.tokens, dict(metrics))


def mask_counts(lengths: Tensor, samples: int, stratified: bool, generator: torch.Generator | None) -> Tensor:
    """(samples, B) how many of each row's `lengths` answer tokens each sample masks, in [1, L]:
    sample j draws from the j-th of `samples` equal shares of [0, 1) when `stratified`, else from
    all of it (LLaDA's estimator masks k tokens and weighs them L / k)."""
    u = uniform((samples, lengths.shape[0]), generator, lengths.device)
    if stratified:
        u = (torch.arange(samples, device=lengths.device)[:, None] + u) / samples
    return (u * lengths).floor().long().clamp(max=lengths - 1) + 1


def masked_answers(answer: Tensor, counts: Tensor, generator: torch.Generator | None) -> Tensor:
    """(S*B, W) bool: for each sample and row, `counts` answer positions chosen uniformly."""
    samples, rows = counts.shape
    scores = uniform((samples, rows, answer.shape[1]), generator, answer.device).masked_fill(~answer, 2.0)
    rank = scores.argsort(dim=-1).argsort(dim=-1)
    return (rank < counts[..., None]).reshape(samples * rows, -1)


def elbo(model: Transformer, batch: SFTBatch, masked: Tensor, samples: int, mask_id: int) -> Tensor:
    """(B,) the mean over samples of sum(log p at the masked answer tokens) * L / k: LLaDA's
    Monte Carlo lower bound on log p(answer | prompt) (section 10), for the masks given."""
    answer = batch.answer
    ids, pad = batch.input_ids.repeat(samples, 1), batch.pad_mask.repeat(samples, 1)
    logits = selected_logits(
        model, apply_mask(ids, masked, mask_id), masked, attn_mask=padding_attention_mask(pad)
    )
    logp = -F.cross_entropy(logits, ids[masked], reduction="none")
    weight = answer.sum(dim=1).repeat(samples) / masked.sum(dim=1).clamp(min=1)
    return (row_sums(logp, masked) * weight).reshape(samples, -1).mean(dim=0)


@dataclass(frozen=True, kw_only=True)
class DiffusionDPOObjective(DiffusionDPOConfig):
    reference: Transformer = field(repr=False, compare=False)
    mask_id: int

    def __call__(
        self, model: Transformer, batch: PairBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        policy, reference = [], []
        for side in (batch.chosen, batch.rejected):
            lengths = side.answer.sum(dim=1)
            counts = mask_counts(lengths, self.mc_num, self.vrpo, generator)
            masked = masked_answers(side.answer, counts, generator)
            policy.append(elbo(model, side, masked, self.mc_num, self.mask_id))
            if not self.vrpo:  # the naive estimator: the reference draws its own noise
                counts = mask_counts(lengths, self.mc_num, False, generator)
                masked = masked_answers(side.answer, counts, generator)
            with torch.no_grad():
                reference.append(elbo(self.reference, side, masked, self.mc_num, self.mask_id))
        loss, metrics = dpo_loss(torch.stack(policy), torch.stack(reference), self.beta, self.dpop_lambda)
        return LossOutput(loss, batch.chosen.tokens + batch.rejected.tokens, dict(metrics))
