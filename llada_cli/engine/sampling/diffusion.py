"""Masked-diffusion sampling: LLaDA's reference sampler and its faster variants (docs/algorithms.md 7, 8).

The generated region starts fully masked and is decoded block by block, left to right.
Each step proposes a candidate token for every position of the current block and commits
some masked ones: a fixed number per step ranked by confidence (section 7, identical to
the reference at temperature 0), or all those above a confidence threshold (section 8).

LLaDA 2.1 editing (edit_threshold) also rewrites tokens already generated, in any block up
to the current one, whose candidate differs and is more than edit_threshold confident; the
prompt is never rewritten. With a KV cache (prefix or dual) only the current block is
editable: later steps of a block do not rerun the earlier blocks, so there are no logits to
edit them with, and rewriting them would leave their cached keys/values stale.

Random draws, in this order at every step, for the R rows of the current batch and the W
columns of the step's window (the current block; with editing and no cache, every generated
column up to the block's end) -- the contract any reimplementation must follow to reproduce
a seeded run: (1) with temperature > 0, U(0, 1) float64 of shape (R, W, V) for the Gumbel
noise; (2) with random remasking, U(0, 1) float64 of shape (R, W) for the confidences.
Rows whose answer has ended stay in the batch, frozen, until the next block boundary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..model.transformer import Transformer
from ..objectives.masking import uniform
from .cache import BlockForward, Rows
from .common import (
    Generation,
    StepCallback,
    TraceEvent,
    generations,
    left_pad,
    model_context,
    model_device,
)
from .remasking import REMASKING
from .settings import MODES, DiffusionSettings, resolve_settings, resolved

__all__ = ["MODES", "DiffusionSettings", "generate_diffusion", "resolve_settings", "transfer_schedule"]


def transfer_schedule(masked: torch.Tensor, steps: int) -> torch.Tensor:
    """(R, steps) tokens to commit per step: m // steps each, one more for the first m % steps steps."""
    extra = torch.arange(steps, device=masked.device)[None, :] < (masked % steps)[:, None]
    return (masked // steps)[:, None] + extra.long()


def gumbel_argmax(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """argmax of exp(l) / (-log u) ** T in float64 (LLaDA's Gumbel-max); plain argmax at T = 0."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    noise = (-torch.log(uniform(tuple(logits.shape), generator, logits.device, torch.float64))) ** temperature
    return (logits.double().exp() / noise).argmax(dim=-1)


def propose(
    logits: torch.Tensor,
    settings: DiffusionSettings,
    eos: torch.Tensor,
    mask_id: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate tokens (R, W) and their float64 confidences.

    The mask token is never a candidate (nor an edit): it is drawn with logit -inf. Confidences
    stay the model's probabilities, so where the mask would not have won nothing changes (the
    reference sampler's answers stay token-identical).

    Without eos_confidence, EOS candidates get their confidence minus 2: below every other
    candidate (confidences lie in [0, 1]) yet still ordered among themselves. So a fixed
    per-step count commits an EOS only when nothing else is left in the block, the most
    confident EOS first, and a threshold (> 0) never accepts one except as the forced single
    commit of a step whose remaining candidates are all EOS.
    """
    if settings.suppress_eos:
        logits[..., eos] = -torch.inf
    drawn_from = logits.clone()
    drawn_from[..., mask_id] = -torch.inf
    if settings.top_k > 0 and settings.top_k < logits.shape[-1]:
        kth = drawn_from.topk(settings.top_k, dim=-1).values[..., -1:]
        drawn_from = drawn_from.masked_fill(drawn_from < kth, -torch.inf)
    candidates = gumbel_argmax(drawn_from, settings.temperature, generator)
    confidence = REMASKING[settings.remasking](logits, candidates, generator)
    if not settings.eos_confidence:
        confidence = torch.where(torch.isin(candidates, eos), confidence - 2, confidence)
    return candidates, confidence


def top_k_mask(confidence: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The counts[r] most confident columns of each row (ties: leftmost first)."""
    order = confidence.argsort(dim=-1, descending=True, stable=True)
    ranks = torch.empty_like(order).scatter_(
        -1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order)
    )
    return ranks < counts[:, None]


def threshold_mask(confidence: torch.Tensor, tau: float, budget: torch.Tensor | None = None) -> torch.Tensor:
    """Columns at least tau confident, plus each row's most confident one so every step makes progress;
    with a budget (R,), only the budget[r] most confident of those."""
    best = F.one_hot(confidence.argmax(dim=-1), confidence.shape[-1]).bool()
    has_candidates = confidence.isfinite().any(dim=-1, keepdim=True)
    chosen = (confidence >= tau) | (best & has_candidates)
    if budget is None:
        return chosen
    return chosen & top_k_mask(confidence.masked_fill(~chosen, -torch.inf), budget)


def cap_ratios(start: float | None, end: float | None) -> tuple[float, float] | None:
    """The CAP shares at a block's start and end, either one standing for both when given alone;
    None when neither is."""
    if start is None:
        return None if end is None else (end, end)
    return start, start if end is None else end


def cap_budget(
    remaining: torch.Tensor, initial: torch.Tensor, settings: DiffusionSettings
) -> torch.Tensor | None:
    """Commits allowed this step (R,), Nano-LLaDA's CAP: a share of the block's remaining masks that
    rises linearly from cap_start_ratio to cap_end_ratio as the block fills, at least 1, at most
    max_decode_per_step (when set). None: no limit."""
    ratios = cap_ratios(settings.cap_start_ratio, settings.cap_end_ratio)
    if ratios is None and not settings.max_decode_per_step:
        return None
    budget = remaining.clone()
    if ratios is not None:
        start, end = ratios
        done = 1 - remaining / initial.clamp(min=1)
        share = (start + (end - start) * done).clamp(min=min(start, end), max=1.0)
        budget = (remaining * share).round().clamp(min=1).long()
    if settings.max_decode_per_step:
        budget = budget.clamp(max=settings.max_decode_per_step)
    return budget


def penalize_recent(
    logits: torch.Tensor, x: torch.Tensor, mask_id: int, penalty: float, window: int
) -> torch.Tensor:
    """Logits (R, W, V) lowered by penalty times each token's count among the last `window` decided
    tokens of each row (prompt and answer, in position order; 0: all of them)."""
    decided = x != mask_id
    if window > 0:
        from_end = decided.flip(-1).cumsum(-1).flip(-1)  # decided tokens at or after each position
        decided &= from_end <= window
    counts = torch.zeros(x.shape[0], logits.shape[-1], device=x.device, dtype=logits.dtype)
    counts.scatter_add_(1, x.masked_fill(~decided, 0), decided.to(logits.dtype))
    return logits - penalty * counts[:, None, :]


def ended_by_eos(region: torch.Tensor, mask_id: int, eos: torch.Tensor) -> torch.Tensor:
    """(R,) True where the first column that is masked or EOS holds an EOS: the answer is complete."""
    is_eos = torch.isin(region, eos)
    first = (is_eos | (region == mask_id)).int().argmax(dim=-1, keepdim=True)
    return is_eos.gather(-1, first).squeeze(-1)


def fill_after_eos(region: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
    """Every column after a row's first EOS set to that EOS."""
    first = torch.isin(region, eos).int().argmax(dim=-1, keepdim=True)
    after = torch.arange(region.shape[-1], device=region.device)[None, :] > first
    return torch.where(after, region.gather(-1, first), region)


class DiffusionRun:
    """The state of one generate_diffusion call: the full batch, the rows still decoding, the counters."""

    def __init__(
        self,
        model: Transformer,
        prompts: list[list[int]],
        settings: DiffusionSettings,
        mask_id: int,
        eos_ids: set[int],
        generator: torch.Generator | None,
        on_step: StepCallback,
        trace: list[TraceEvent] | None,
    ) -> None:
        device = model_device(model)
        self.settings, self.mask_id, self.generator = settings, mask_id, generator
        self.on_step, self.trace = on_step, trace
        self.started = time.perf_counter()
        self.eos_ids = eos_ids
        self.eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=device)
        padded = left_pad(prompts, pad_id=mask_id, device=device)  # padding is never attended: any id works
        count, self.prompt_width = padded.ids.shape
        self.gen_length = resolved(settings.gen_length, "gen_length")
        self.block_length = resolved(settings.block_length, "block_length")
        self.length = self.prompt_width + self.gen_length
        self.x = F.pad(padded.ids, (0, self.gen_length), value=mask_id)  # (B, L), every row
        self.rows = Rows(
            torch.arange(count, device=device),
            self.x.clone(),
            padded.positions(self.length),
            padded.key_valid(self.length),
        )
        self.done = torch.zeros(count, dtype=torch.bool, device=device)  # per row of self.rows
        block_causal = settings.attention == "block_causal"
        self.forward = BlockForward(
            model,
            settings.cache,
            settings.cfg_scale,
            mask_id,
            self.prompt_width,
            self.block_length if block_causal else None,
        )
        # semi_ar_origin: the columns after the current block do not exist yet; block-causally
        # they are invisible anyway, so neither runs them
        self.grows = settings.method == "semi_ar_origin" or block_causal
        self.edits_answer = settings.edit_threshold is not None and settings.cache == "none"
        self.forward_passes = torch.zeros(count, dtype=torch.long, device=device)
        self.steps = torch.zeros(count, dtype=torch.long, device=device)
        self.seconds = [0.0] * count
        self.step_index = 0

    @property
    def all_done(self) -> bool:
        return bool(self.done.all())

    def block_masked(self, start: int, end: int) -> torch.Tensor:
        return self.rows.x[:, start:end] == self.mask_id

    def decode_block(self, start: int, end: int) -> None:
        self.retire_done_rows()
        self.forward.start_block()
        settings = self.settings
        if settings.threshold is None:
            steps = resolved(settings.steps, "steps") // (self.gen_length // self.block_length)
            counts = transfer_schedule(self.block_masked(start, end).sum(dim=-1), steps)
            for i in range(steps):
                self.step(start, end, partial(top_k_mask, counts=counts[:, i]), frozen=self.done)
                self.end_step(may_end=~self.done)
                if self.all_done:
                    return
            return
        editing = settings.edit_threshold is not None
        settled = torch.zeros_like(self.done)
        initial = self.block_masked(start, end).sum(dim=-1)
        for _ in range((2 if editing else 1) * (end - start)):
            if bool((self.done | settled).all()):
                return
            budget = cap_budget(self.block_masked(start, end).sum(dim=-1), initial, settings)
            pick = partial(threshold_mask, tau=settings.threshold, budget=budget)
            changed = self.step(start, end, pick, self.done | settled)
            settled |= ~self.block_masked(start, end).any(dim=-1)
            if editing:  # a block settles once it has no masks and a step changed nothing
                settled &= ~changed.any(dim=-1)
            self.end_step(may_end=settled if editing else ~self.done)

    def step(
        self, start: int, end: int, pick: Callable[[torch.Tensor], torch.Tensor], frozen: torch.Tensor
    ) -> torch.Tensor:
        """One denoising step of the block [start, end); returns which columns of its window changed (R, W).

        The window is the block, or every generated column up to `end` when editing without a cache.
        """
        first = self.prompt_width if self.edits_answer else start
        # Without a cache the pass runs the whole sequence anyway; `first` only widens the head's window.
        logits = self.forward.logits(self.rows, first, end, end if self.grows else None)
        if self.settings.repeat_penalty > 0:
            logits = penalize_recent(
                logits, self.rows.x, self.mask_id, self.settings.repeat_penalty, self.settings.repeat_window
            )
        current = self.rows.x[:, first:end]
        masked = current == self.mask_id  # earlier blocks hold no masks: commits stay in the block
        candidates, confidence = propose(logits, self.settings, self.eos, self.mask_id, self.generator)
        commit = pick(confidence.masked_fill(~masked, -torch.inf)) & masked
        changed = commit
        if self.settings.edit_threshold is not None:
            # One end token for another is no edit (EOS and <|im_end|> both end the answer); counting it
            # would keep a settled block flipping between them until the step limit.
            same_end = torch.isin(candidates, self.eos) & torch.isin(current, self.eos)
            edit = ~masked & (candidates != current) & ~same_end
            changed = commit | (edit & (confidence > self.settings.edit_threshold))
        changed &= ~frozen[:, None]
        self.rows.x[:, first:end] = torch.where(changed, candidates, current)
        live = self.rows.index[~self.done]
        self.steps[live] += 1
        self.forward_passes[live] += self.forward.passes_per_call
        if self.trace is not None:
            self.record(self.trace, changed, commit, candidates, first)
        return changed

    def end_step(self, may_end: torch.Tensor) -> None:
        """Close finished answers (early stop), publish the step, advance the step counter."""
        if self.settings.early_stop:
            region = self.rows.x[:, self.prompt_width :]
            ended = may_end & ~self.done & ended_by_eos(region, self.mask_id, self.eos)
            if ended.any():
                self.rows.x[ended, self.prompt_width :] = fill_after_eos(region[ended], self.eos)
                self.done |= ended
                for row in self.rows.index[ended].tolist():
                    self.seconds[row] = time.perf_counter() - self.started
        self.x[self.rows.index] = self.rows.x
        if self.on_step is not None:
            self.on_step(self.step_index, self.x[:, self.prompt_width :].clone())
        self.step_index += 1

    def record(
        self,
        trace: list[TraceEvent],
        changed: torch.Tensor,
        commit: torch.Tensor,
        candidates: torch.Tensor,
        start: int,
    ) -> None:
        rows, columns = changed.nonzero(as_tuple=True)
        offset = start - self.prompt_width
        for row, column, token, committed in zip(
            self.rows.index[rows].tolist(),
            columns.tolist(),
            candidates[rows, columns].tolist(),
            commit[rows, columns].tolist(),
            strict=True,
        ):
            kind: Literal["commit", "edit"] = "commit" if committed else "edit"
            trace.append(TraceEvent(self.step_index, offset + column, token, kind, row))

    def retire_done_rows(self) -> None:
        """Drop ended rows from the batch at a block boundary, where the KV cache is rebuilt anyway."""
        if self.done.any():
            keep = ~self.done
            self.rows, self.done = self.rows.select(keep), self.done[keep]
            self.forward.keep_rows(keep)

    def results(self) -> list[Generation]:
        elapsed = time.perf_counter() - self.started
        for row in self.rows.index[~self.done].tolist():
            self.seconds[row] = elapsed
        tokens = self.x[:, self.prompt_width :].tolist()
        return generations(tokens, self.eos_ids, self.forward_passes, self.steps, self.seconds)


@torch.inference_mode()
def generate_diffusion(
    model: Transformer,
    prompts: list[list[int]],
    settings: DiffusionSettings,
    mask_id: int,
    eos_ids: set[int],
    generator: torch.Generator | None = None,
    on_step: StepCallback = None,
    trace: list[TraceEvent] | None = None,
) -> list[Generation]:
    """Generate settings.gen_length tokens after each prompt; answers are cut before their first EOS.

    With settings.edit_threshold, a step may rewrite any generated token before or in the current
    block (only the current block's with a KV cache), never the prompt.
    """
    if not prompts:
        return []
    if model.config.logit_shift and min(len(prompt) for prompt in prompts) == 0:
        raise UsageError(
            "a prompt is empty: this diffusion model has the logit shift, so its first answer slot is "
            "predicted from the prompt's last token"
        )
    settings = resolve_settings(settings, room=model_context(model) - max(len(p) for p in prompts))
    run = DiffusionRun(model, prompts, settings, mask_id, eos_ids, generator, on_step, trace)
    for start in range(run.prompt_width, run.length, run.block_length):
        run.decode_block(start, start + run.block_length)
        if run.all_done:
            break
    return run.results()
