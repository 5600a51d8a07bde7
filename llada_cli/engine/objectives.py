"""The training losses: AR and diffusion, for pretraining and SFT (docs/algorithms.md sections 2-6).

Each objective is a small dataclass called as `objective(model, batch, generator, progress)`;
`progress` = step / total steps (only the WSD curriculum reads it). The head runs only on the
positions that carry a loss, and cross entropy is computed in float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import UsageError, named
from .masking import (
    NOISE_SCHEDULES,
    apply_mask,
    bdlm_attention_mask,
    document_attention_mask,
    document_ids,
    mask_probability,
    noise_level,
    padding_attention_mask,
    sample_mask,
    uniform,
)
from .model import Transformer
from .options import check_options, option
from .schedules import default_block_sizes, validate_block_sizes, wsd_block_size


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


def sft_batch(input_ids: Tensor, response_mask: Tensor, pad_mask: Tensor) -> SFTBatch:
    """Rows cut to the longest conversation of the batch, so EOS padding only reaches that length.

    LLaDA pads within the batch: padding every row to the row length would count dozens of EOS as
    answer, dilute short answers (the 1 / answer_len weight) and teach the model to stop early.
    """
    width = int((~pad_mask).sum(dim=1).max())
    return SFTBatch(input_ids[:, :width], response_mask[:, :width], pad_mask[:, :width])


def selected_cross_entropy(
    model: Transformer,
    input_ids: Tensor,
    targets: Tensor,
    select: Tensor,
    positions: Tensor | None = None,
    attn_mask: Tensor | None = None,
) -> Tensor:
    """Float32 cross entropy at the selected positions, row-major; the head runs on those only."""
    hidden, _ = model.hidden_states(input_ids, positions, attn_mask, past=None)
    logits = model.lm_head(hidden[select]).float()
    return F.cross_entropy(logits, targets[select], reduction="none")


# -- autoregressive --------------------------------------------------------------------------


def next_token_loss(
    model: Transformer, input_ids: Tensor, is_target: Tensor, attn_mask: Tensor | None
) -> Tensor:
    """Mean CE of predicting token i + 1 from tokens <= i, over the i + 1 where is_target holds."""
    select = is_target[:, 1:]
    ce = selected_cross_entropy(model, input_ids[:, :-1], input_ids[:, 1:], select, attn_mask=attn_mask)
    return ce.sum() / select.sum().clamp(min=1)


@dataclass(frozen=True)
class DocumentMasking:
    doc_attention_mask: bool = option(False, "Attend only within a document of a packed row.")

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True)
class ARPretrainConfig(DocumentMasking):
    """The options of AR pretraining."""


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


@dataclass(frozen=True)
class ARSFTConfig:
    """AR SFT has no options of its own."""


@dataclass(frozen=True, kw_only=True)
class ARSFTObjective(ARSFTConfig):
    """Cross entropy on assistant tokens only: prompt and padding are never targets (section 6)."""

    def __call__(
        self, model: Transformer, batch: SFTBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        is_target = batch.response_mask & ~batch.pad_mask
        loss = next_token_loss(model, batch.input_ids, is_target, attn_mask=None)
        return LossOutput(loss, (~batch.pad_mask).sum(), {})


# -- masked diffusion --------------------------------------------------------------------------


def plain_cross_entropy(
    model: Transformer, x0: Tensor, xt: Tensor, masked: Tensor, attn_mask: Tensor | None
) -> Tensor:
    """CE of the clean token at every masked position of x_t, the model seeing x_t alone."""
    return selected_cross_entropy(model, xt, x0, masked, attn_mask=attn_mask)


def bdlm_cross_entropy(
    model: Transformer, x0: Tensor, xt: Tensor, masked: Tensor, block_size: int, doc_ids: Tensor | None
) -> Tensor:
    """CE at the masked positions of x_t, the model seeing [x_t ; x0] under the block rule (section 4).

    Both halves carry positions 0..L-1. With a document mask the block rule is ANDed with
    "same document", the document ids repeated on both halves. Same order as plain_cross_entropy.
    """
    length = x0.shape[1]
    positions = torch.arange(length, device=x0.device).repeat(2)
    attn_mask = bdlm_attention_mask(length, block_size, device=x0.device)
    if doc_ids is not None:
        attn_mask = attn_mask & document_attention_mask(torch.cat((doc_ids, doc_ids), dim=1), causal=False)
    select = torch.cat((masked, torch.zeros_like(masked)), dim=1)
    inputs, targets = torch.cat((xt, x0), dim=1), torch.cat((x0, x0), dim=1)
    return selected_cross_entropy(model, inputs, targets, select, positions, attn_mask)


def _one_block(config: DiffusionPretrainConfig, progress: float, seq_len: int) -> int:
    return seq_len


def _wsd_block(config: DiffusionPretrainConfig, progress: float, seq_len: int) -> int:
    up, down = default_block_sizes(seq_len)
    return wsd_block_size(
        progress,
        seq_len,
        config.block_sizes_up or up,
        config.block_sizes_down or down,
        config.wsd_warmup_ratio,
        config.wsd_stable_ratio,
    )


# Mask schedules: the block size at a training progress. iid_t is LLaDA 1.0 (one block, the
# whole row); wsd is LLaDA 2.0's warmup-stable-decay block curriculum (section 4).
MASK_SCHEDULES: dict[str, Callable[[DiffusionPretrainConfig, float, int], int]] = {
    "iid_t": _one_block,
    "wsd": _wsd_block,
}


@dataclass(frozen=True)
class DiffusionPretrainConfig(DocumentMasking):
    """The options of LLaDA pretraining: iid_t masking (section 2) or the WSD block curriculum (section 4)."""

    mask_schedule: str = option(
        "iid_t", "iid_t (LLaDA 1.0) or wsd (LLaDA 2.0 block curriculum).", choices=MASK_SCHEDULES
    )
    noise_schedule: str = option("linear", "alpha(t) of the forward process.", choices=NOISE_SCHEDULES)
    time_weighted_loss: bool = option(False, "Weight by w(t) of the noise schedule instead of 1/p.")
    normalized_loss: bool = option(
        False, "sum(w*CE)/sum(w*masked) (nano-llada) instead of the ELBO's division by the token count."
    )
    iid_mask_eps: float = option(1e-3, "Smallest mask rate.", above=0, below=1)
    variable_length_prob: float = option(
        0.01, "Share of batches cut to a random length.", at_least=0, at_most=1
    )
    block_sizes_up: tuple[int, ...] = option(
        (), "wsd warmup block sizes, e.g. 1,4,16,64,256 (default: from the row length)."
    )
    block_sizes_down: tuple[int, ...] = option((), "wsd decay block sizes (default: from the row length).")
    wsd_warmup_ratio: float = option(0.3, "wsd warmup share of the steps.", at_least=0, at_most=1)
    wsd_stable_ratio: float = option(0.5, "wsd stable share of the steps.", at_least=0, at_most=1)

    def check_row_length(self, seq_len: int) -> None:
        """Block sizes must divide the training rows."""
        if self.mask_schedule != "wsd":
            return
        for name in ("block_sizes_up", "block_sizes_down"):
            if getattr(self, name):
                validate_block_sizes(getattr(self, name), seq_len, name)


@dataclass(frozen=True, kw_only=True)
class DiffusionPretrainObjective(DiffusionPretrainConfig):
    mask_id: int
    eos_id: int

    def __call__(
        self, model: Transformer, batch: PretrainBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        block_size = self.block_size(progress, batch.input_ids.shape[1])
        x0 = self.maybe_shorten(batch.input_ids, generator)
        batch_size, length = x0.shape
        # One t per block (a single block = the iid_t case), drawn once: mask AND weight use it.
        t = uniform((batch_size, math.ceil(length / block_size)), generator, x0.device)
        t = t[:, torch.arange(length, device=x0.device) // block_size]
        p, weight = noise_level(t, self.noise_schedule, self.iid_mask_eps, self.time_weighted_loss)
        # With a document mask the EOS positions are visible in the attention pattern: never mask them.
        maskable = x0 != self.eos_id if self.doc_attention_mask else torch.ones_like(x0, dtype=torch.bool)
        masked = sample_mask(maskable, p, generator)
        xt = apply_mask(x0, masked, self.mask_id)
        doc_ids = document_ids(x0, self.eos_id) if self.doc_attention_mask else None
        if block_size >= length:
            attn_mask = None if doc_ids is None else document_attention_mask(doc_ids, causal=False)
            ce = plain_cross_entropy(model, x0, xt, masked, attn_mask)
        else:
            ce = bdlm_cross_entropy(model, x0, xt, masked, block_size, doc_ids)
        weight = weight[masked]
        total = (ce * weight).sum()
        loss = total / weight.sum().clamp(min=1e-12) if self.normalized_loss else total / x0.numel()
        metrics = {"mask_rate": masked.float().mean().detach()}
        if self.mask_schedule == "wsd":
            metrics["block_size"] = float(block_size)
        return LossOutput(loss, x0.numel(), metrics)

    def for_validation(self) -> DiffusionPretrainObjective:
        """The schedule's true ELBO (one block, full rows, w(t) weights), comparable across steps and runs.

        Only w(t) makes the loss a bound: 1/p under the cosine schedule, or the normalised mean, is not.
        """
        return replace(
            self,
            mask_schedule="iid_t",
            variable_length_prob=0.0,
            time_weighted_loss=True,
            normalized_loss=False,
        )

    def block_size(self, progress: float, seq_len: int) -> int:
        """The block size the mask schedule gives at this progress (seq_len: a single block)."""
        return MASK_SCHEDULES[self.mask_schedule](self, progress, seq_len)

    def maybe_shorten(self, x0: Tensor, generator: torch.Generator | None) -> Tensor:
        """With probability variable_length_prob, keep only the first U{1..L} tokens of every row."""
        if self.variable_length_prob <= 0:
            return x0
        coin, fraction = uniform((2,), generator, torch.device("cpu")).tolist()
        if coin >= self.variable_length_prob:
            return x0
        return x0[:, : 1 + int(fraction * x0.shape[1])]


PAD_POLICIES = {
    "eos": "EOS padding is trained as response (the model learns to stop)",
    "ignore": "padding is neither attended nor trained",
}


@dataclass(frozen=True)
class DiffusionSFTConfig:
    """The options of LLaDA SFT (section 6)."""

    pad_policy: str = option(
        "eos",
        "eos: EOS padding is trained as response (learn to stop); ignore: not trained.",
        choices=PAD_POLICIES,
    )
    complementary_masking: bool = option(False, "Each row twice with complementary masks (LLaDA 2.0).")
    mask_ratio_band: tuple[float, float] | None = option(None, "Restrict t to [a,b], e.g. 0.2,0.8.")

    def __post_init__(self) -> None:
        check_options(self)
        band = self.mask_ratio_band
        if band is not None and not (len(band) == 2 and 0.0 <= band[0] <= band[1] <= 1.0):
            raise UsageError(f"{named('mask_ratio_band')} needs two numbers a,b with 0 <= a <= b <= 1")


@dataclass(frozen=True, kw_only=True)
class DiffusionSFTObjective(DiffusionSFTConfig):
    """LLaDA SFT: the prompt is never masked; loss = mean over rows of sum CE / p_b / answer_len_b."""

    mask_id: int
    eps: float = 1e-3  # smallest mask rate, as in pretraining

    def __call__(
        self, model: Transformer, batch: SFTBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        x0, pad = batch.input_ids, batch.pad_mask
        answer = batch.response_mask | pad if self.pad_policy == "eos" else batch.response_mask & ~pad
        p = mask_probability(self.draw_t(x0.shape[0], generator, x0.device), "linear", self.eps)
        masked = sample_mask(answer, p, generator)
        metrics = {"mask_rate": (masked.sum() / answer.sum().clamp(min=1)).detach()}
        if self.complementary_masking:
            # The twin row masks exactly the response tokens the first left clean: with p' = 1 - p.
            twin = answer & ~masked
            x0, pad, answer = (torch.cat((a, a)) for a in (x0, pad, answer))
            masked = torch.cat((masked, twin))
            p = torch.cat((p, (1.0 - p).clamp(min=self.eps)))
        answer_len = answer.sum(dim=1).clamp(min=1)
        attn_mask = padding_attention_mask(pad) if self.pad_policy == "ignore" else None
        ce = plain_cross_entropy(model, x0, apply_mask(x0, masked, self.mask_id), masked, attn_mask)
        row_weight = 1.0 / (p * answer_len)
        loss = (ce * row_weight[:, None].expand_as(masked)[masked]).sum() / x0.shape[0]
        return LossOutput(loss, (~batch.pad_mask).sum(), metrics)

    def draw_t(self, rows: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """t ~ U[0, 1), or U[a, b) with a mask-ratio band."""
        t = uniform((rows,), generator, device)
        if self.mask_ratio_band is None:
            return t
        low, high = self.mask_ratio_band
        return low + (high - low) * t


# The options of each (kind, stage), and the objective each config trains.
OBJECTIVE_CONFIGS: dict[tuple[str, str], type] = {
    ("ar", "pretrain"): ARPretrainConfig,
    ("diffusion", "pretrain"): DiffusionPretrainConfig,
    ("ar", "sft"): ARSFTConfig,
    ("diffusion", "sft"): DiffusionSFTConfig,
}
_OBJECTIVES: dict[type, type] = {
    ARPretrainConfig: ARPretrainObjective,
    DiffusionPretrainConfig: DiffusionPretrainObjective,
    ARSFTConfig: ARSFTObjective,
    DiffusionSFTConfig: DiffusionSFTObjective,
}


def make_objective(config: object, mask_id: int | None, eos_id: int):
    """The objective that trains with `config`, given the tokenizer's special ids."""
    cls = _OBJECTIVES[type(config)]
    ids = {"mask_id": mask_id, "eos_id": eos_id}
    wanted = {f.name for f in fields(cls)} - {f.name for f in fields(type(config))}
    given = {k: ids[k] for k in wanted if k in ids}
    return cls(**{f.name: getattr(config, f.name) for f in fields(config)}, **given)
