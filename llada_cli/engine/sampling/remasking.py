"""Remasking strategies: the confidence by which a step ranks its candidate tokens (docs/algorithms.md 7).

Each takes the step's logits (R, W, V), the candidates (R, W) and the generator, and returns
float64 confidences (R, W); the highest are committed first.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..objectives.masking import uniform


def low_confidence(logits: torch.Tensor, candidates: torch.Tensor, generator: torch.Generator | None):
    """The softmax probability of each candidate (LLaDA's default)."""
    probs = F.softmax(logits.double(), dim=-1)
    return probs.gather(-1, candidates[..., None]).squeeze(-1)


def margin(logits: torch.Tensor, candidates: torch.Tensor, generator: torch.Generator | None):
    """The top probability minus the second (Dream's topk_margin): a slot torn between two tokens
    waits, however likely its first choice."""
    top = F.softmax(logits.double(), dim=-1).topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def entropy(logits: torch.Tensor, candidates: torch.Tensor, generator: torch.Generator | None):
    """exp(-H) of each slot's distribution (Dream's entropy confidence, -H, mapped into (0, 1] with
    the same order, so a threshold reads as for the others: 1 is a certain slot)."""
    logp = F.log_softmax(logits.double(), dim=-1)
    return (logp.exp() * logp).sum(dim=-1).exp()


def random(logits: torch.Tensor, candidates: torch.Tensor, generator: torch.Generator | None):
    """A U(0, 1) float64 draw per candidate: commit in random order."""
    return uniform(tuple(candidates.shape), generator, logits.device, torch.float64)


REMASKING: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], torch.Tensor]] = {
    "low_confidence": low_confidence,
    "margin": margin,
    "entropy": entropy,
    "random": random,
}
