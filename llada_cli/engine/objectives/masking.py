"""Forward (noising) processes, their loss weights and the attention masks of training.

docs/algorithms.md sections 2-5. Everything here is a pure function of tensors. Random numbers are
drawn on the CPU from the caller's generator and then moved to the data's device, so a seed
gives the same masks on every device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class NoiseSchedule:
    """alpha(t) through its two uses: the mask probability 1 - alpha(t) and the ELBO weight w(t).

    Both take t clamped by the same eps, so p and w(t) always describe the same noise level.
    """

    mask_probability: Callable[[Tensor, float], Tensor]
    weight: Callable[[Tensor, float], Tensor]  # w(t) = -alpha'(t) / (1 - alpha(t)) (section 3)


def _linear_p(t: Tensor, eps: float) -> Tensor:
    return (1.0 - eps) * t + eps  # section 2


def _cosine_p(t: Tensor, eps: float) -> Tensor:
    return torch.sin(math.pi * t.clamp(min=eps) / 2) ** 2  # = 1 - cos^2, without float32 cancellation


NOISE_SCHEDULES: dict[str, NoiseSchedule] = {
    # linear: w(t) = 1 / p(t), so LLaDA's 1 / p_b weight is exactly the ELBO's
    "linear": NoiseSchedule(_linear_p, lambda t, eps: 1.0 / _linear_p(t, eps)),
    # cosine: alpha(t) = cos^2(pi t / 2), w(t) = pi * cot(pi t / 2)
    "cosine": NoiseSchedule(_cosine_p, lambda t, eps: math.pi / torch.tan(math.pi * t.clamp(min=eps) / 2)),
}


def mask_probability(t: Tensor, schedule: str, eps: float) -> Tensor:
    """1 - alpha(t) of the named schedule, kept away from 0 so that the weights stay finite."""
    return NOISE_SCHEDULES[schedule].mask_probability(t, eps)


def loss_weight(t: Tensor, schedule: str, eps: float) -> Tensor:
    """w(t) of the named schedule."""
    return NOISE_SCHEDULES[schedule].weight(t, eps)


def noise_level(t: Tensor, schedule: str, eps: float, time_weighted: bool) -> tuple[Tensor, Tensor]:
    """(mask probability p, loss weight) of noise level t, both from the same t.

    The weight is w(t) of the schedule with `time_weighted` (the ELBO for any schedule), else 1/p
    (LLaDA 1.0; the same thing under the linear schedule).
    """
    p = mask_probability(t, schedule, eps)
    return p, loss_weight(t, schedule, eps) if time_weighted else 1.0 / p


def uniform(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """U[0, 1) draws made on the CPU (reproducible across devices, CPU generators work), then moved."""
    return torch.rand(shape, generator=generator, dtype=dtype).to(device)


def sample_mask(maskable: Tensor, p: Tensor, generator: torch.Generator | None) -> Tensor:
    """Mask each maskable position independently with probability p (per row (B,) or per position (B, L)).

    A row may end up with no mask at all; it then contributes 0 to the loss. That keeps the
    estimator unbiased (LLaDA): forcing one mask would give that token weight 1/p with
    probability (1 - p)^n and inflate the expected loss (docs/algorithms.md section 2).
    """
    if p.dim() == 1:
        p = p[:, None]
    return (uniform(tuple(maskable.shape), generator, maskable.device) < p) & maskable


def apply_mask(x0: Tensor, masked: Tensor, mask_id: int) -> Tensor:
    """x_t: the clean ids with every masked position replaced by the mask token."""
    return x0.masked_fill(masked, mask_id)


def document_ids(input_ids: Tensor, eos_id: int, pad: Tensor | None = None) -> Tensor:
    """Per-position document index of packed rows (B, L).

    The index increments after each EOS, so an EOS belongs to the document it ends. Pad
    positions get ids no document can have (L + position), so each pad is a document of its own.
    """
    is_eos = (input_ids == eos_id).long()
    ids = is_eos.cumsum(dim=1) - is_eos
    if pad is not None:
        length = input_ids.shape[1]
        own = length + torch.arange(length, device=input_ids.device)
        ids = torch.where(pad, own, ids)
    return ids


def document_attention_mask(doc_ids: Tensor, causal: bool) -> Tensor:
    """(B, 1, L, L) bool, True = may attend: same document (and not in the future when causal).

    Every position attends at least to itself, so no row is all-false (that would give NaN in SDPA).
    """
    allowed = doc_ids[:, :, None] == doc_ids[:, None, :]
    if causal:
        length = doc_ids.shape[1]
        allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=doc_ids.device).tril()
    return allowed[:, None]


def bdlm_attention_mask(block: Tensor) -> Tensor:
    """(2L, 2L), or (B, 1, 2L, 2L) for per-row blocks, bool mask over the concatenation [x_t ; x0]
    of block diffusion (section 4), from each column's block index `block` ((L,) or (B, L)).

    Noisy block k attends to noisy block k and to clean blocks < k; clean tokens attend to clean
    blocks <= their own; clean tokens never see noisy ones. Blocks need not be equal: SFT counts
    them from each row's answer start (section 6), a short last block follows the same rules.
    """
    length = block.shape[-1]
    both = torch.cat((block, block), dim=-1)
    clean = torch.arange(2 * length, device=block.device) >= length
    q_clean, k_clean = clean[:, None], clean[None, :]
    q_block, k_block = both[..., :, None], both[..., None, :]
    noisy_to_noisy = ~q_clean & ~k_clean & (q_block == k_block)
    noisy_to_clean = ~q_clean & k_clean & (k_block < q_block)
    clean_to_clean = q_clean & k_clean & (k_block <= q_block)
    mask = noisy_to_noisy | noisy_to_clean | clean_to_clean
    return mask if block.dim() == 1 else mask[:, None]


def equal_blocks(length: int, block_size: int, device: torch.device | str | None = None) -> Tensor:
    """(L,) the block index of each column, in blocks of block_size from column 0 (pretraining)."""
    return torch.arange(length, device=device) // block_size


def padding_attention_mask(pad: Tensor) -> Tensor:
    """(B, 1, L, L) bool: real tokens attend to real tokens only; each pad position only to itself."""
    real = ~pad
    itself = torch.eye(pad.shape[1], dtype=torch.bool, device=pad.device)
    return ((real[:, :, None] & real[:, None, :]) | itself)[:, None]
