"""Infilling (docs/algorithms.md section 7): a text with slots, `[MASK:n]` for n of them and `[MASK]`
for one, denoised with the text on both sides visible; nothing else changes. A text is read as a
document: after an EOS, as documents follow one another in pretraining rows.

Every step the model sees the whole row; each still-masked slot proposes a candidate (section 7)
and the step commits those at least `threshold` confident (with the most confident one, so each
step makes progress; at most `max_decode_per_step` of them when given), or, with `exact`/`steps`,
a fixed number of them, the most confident first. Rows of a batch are right-padded, the padding
never attended.
"""

from __future__ import annotations

import re
import time

import torch

from ..errors import UsageError, named
from ..model.tokenizer import Tokenizer
from ..model.transformer import Transformer
from .common import Generation, model_context, model_device, self_attention_mask
from .diffusion import propose, threshold_mask, top_k_mask, transfer_schedule
from .settings import DiffusionSettings, check_threshold, with_default_threshold

SLOT = re.compile(r"\[MASK(?::(\d+))?\]")
# options of generation after a prompt that mean nothing for a text with slots
NOT_FOR_INFILL = (
    "gen_length",
    "method",
    "attention",
    "block_length",
    "cfg_scale",
    "cap_start_ratio",
    "cap_end_ratio",
    "repeat_penalty",
    "repeat_window",
    "cache",
    "edit_threshold",
    "mode",
    "compile",
)


def infill_template(text: str, tokenizer: Tokenizer, mask_id: int) -> tuple[list[int], list[bool]]:
    """The template's token ids, slots as the mask id, and which positions are slots."""
    ids: list[int] = []
    slots: list[bool] = []
    start = 0
    for match in SLOT.finditer(text):
        count = int(match.group(1) or 1)
        if count < 1:
            raise UsageError(f"{match.group(0)} in {text!r}: a slot needs at least one token, e.g. [MASK:1]")
        piece = tokenizer.encode(text[start : match.start()]) if match.start() > start else []
        ids += piece + [mask_id] * count
        slots += [False] * len(piece) + [True] * count
        start = match.end()
    if not any(slots):
        raise UsageError(f"{text!r} has no slot to fill: mark them [MASK:n] (n tokens) or [MASK] (one)")
    rest = tokenizer.encode(text[start:]) if start < len(text) else []
    return ids + rest, slots + [False] * len(rest)


def infill_settings(settings: DiffusionSettings) -> DiffusionSettings:
    """The sampler settings that apply to infilling, with the default threshold; others refused."""
    defaults = DiffusionSettings()
    given = [name for name in NOT_FOR_INFILL if getattr(settings, name) != getattr(defaults, name)]
    if given:
        names = ", ".join(named(name) for name in given)
        raise UsageError(f"{names}: for answers after a prompt, not for filling slots: drop it")
    settings = with_default_threshold(settings)
    check_threshold(settings)
    return settings


@torch.inference_mode()
def generate_infill(
    model: Transformer,
    rows: list[tuple[list[int], list[bool]]],
    settings: DiffusionSettings,
    mask_id: int,
    eos_ids: set[int],
    boundary: int,
    generator: torch.Generator | None = None,
) -> list[tuple[list[int], Generation]]:
    """Each row (ids, slots) with its slots filled, and the slots' tokens with what they cost.
    Every row is read as a document, after the `boundary` token (EOS) that precedes documents in
    pretraining rows; so a slot may open the text even under the logit shift, which predicts a
    position from the one before it."""
    settings = infill_settings(settings)
    rows = [([boundary, *ids], [False, *slots]) for ids, slots in rows]
    longest = max(len(ids) for ids, _ in rows)
    if longest > model_context(model):
        raise UsageError(
            f"a template has {longest} tokens, more than the model's context of {model_context(model)}"
        )
    started = time.perf_counter()
    device = model_device(model)
    x = torch.full((len(rows), longest), mask_id, dtype=torch.long, device=device)
    masked = torch.zeros_like(x, dtype=torch.bool)
    valid = torch.zeros_like(masked)
    for i, (ids, slots) in enumerate(rows):
        x[i, : len(ids)] = torch.tensor(ids, device=device)
        masked[i, : len(ids)] = torch.tensor(slots, device=device)
        valid[i, : len(ids)] = True
    attn_mask = self_attention_mask(valid) if not valid.all() else None
    eos = torch.tensor(sorted(eos_ids), device=device)
    counts = masked.sum(dim=1)
    steps = settings.steps or int(counts.max())
    threshold = settings.threshold
    schedule = transfer_schedule(counts, steps) if threshold is None else None
    budget = torch.full_like(counts, settings.max_decode_per_step) if settings.max_decode_per_step else None
    passes = torch.zeros(len(rows), dtype=torch.long, device=device)
    step = 0
    while masked.any():
        passes += masked.any(dim=1).long()
        candidates, confidence = propose(
            model(x, attn_mask=attn_mask).float(), settings, eos, mask_id, generator
        )
        confidence = confidence.masked_fill(~masked, -torch.inf)
        if threshold is not None:
            commit = threshold_mask(confidence, threshold, budget) & masked
        elif schedule is not None:  # the fixed number of this step; a late step takes what is left
            quota = schedule[:, step] if step < steps else counts
            commit = top_k_mask(confidence, quota) & masked
        x = torch.where(commit, candidates, x)
        masked &= ~commit
        step += 1
    seconds = time.perf_counter() - started
    filled = []
    for i, (ids, slots) in enumerate(rows):
        row = x[i, : len(ids)].tolist()
        chosen = [token for token, slot in zip(row, slots, strict=True) if slot]
        filled.append((row[1:], Generation(chosen, int(passes[i]), int(passes[i]), seconds, finished=True)))
    return filled
