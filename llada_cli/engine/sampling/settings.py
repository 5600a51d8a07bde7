"""Diffusion sampling settings: defaults derived from gen_length, and the couplings between options."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ..errors import UsageError


@dataclass(frozen=True)
class DiffusionSettings:
    gen_length: int = 128
    steps: int | None = None  # None: one token per step (gen_length); adaptive with a threshold
    block_length: int | None = None  # None: 32 when it divides gen_length, else gen_length
    remasking: Literal["low_confidence", "random"] = "low_confidence"
    temperature: float = 0.0  # 0: argmax candidates
    cfg_scale: float = 0.0  # 0: no classifier-free guidance
    suppress_eos: bool = False  # EOS logits set to -inf
    eos_confidence: bool = True  # False: EOS candidates rank below every other candidate
    early_stop: bool = True  # a row ends once a committed EOS closes its answer
    threshold: float | None = None  # commit every masked position at least this confident (section 8)
    cache: Literal["none", "prefix", "dual"] = "none"  # Fast-dLLM KV cache, refreshed at every block
    edit_threshold: float | None = (
        None  # LLaDA 2.1 token editing: rewrite tokens whose new candidate is surer
    )


# LLaDA 2.1 presets (docs/algorithms.md section 8).
MODES: dict[str, dict[str, float | None]] = {
    "quality": dict(threshold=0.7, edit_threshold=0.5),
    "speed": dict(threshold=0.5, edit_threshold=None),
}

REMASKING = ("low_confidence", "random")
CACHES = ("none", "prefix", "dual")


def default_block_length(gen_length: int) -> int:
    return min(gen_length, 32) if gen_length % min(gen_length, 32) == 0 else gen_length


def multiples_near(value: int, unit: int, largest: int | None = None) -> str:
    """The multiples of `unit` just below and above `value` that are allowed, as 'a or b'."""
    below, above = value // unit * unit, (value // unit + 1) * unit
    options = [m for m in (below, above) if m > 0 and (largest is None or m <= largest)]
    return " or ".join(str(m) for m in options)


def check_choices(settings: DiffusionSettings) -> None:
    if settings.remasking not in REMASKING:
        raise UsageError(f"--remasking {settings.remasking} is unknown: use one of {', '.join(REMASKING)}")
    if settings.cache not in CACHES:
        raise UsageError(f"--cache {settings.cache} is unknown: use one of {', '.join(CACHES)}")
    if settings.temperature < 0:
        raise UsageError(f"--temperature {settings.temperature} must be 0 (argmax) or more")
    if settings.cfg_scale < 0:
        raise UsageError(f"--cfg-scale {settings.cfg_scale} must be 0 (off) or more")


def check_block_length(gen_length: int, block_length: int) -> None:
    if gen_length < 1:
        raise UsageError(f"--gen-length {gen_length} must be at least 1")
    if not 1 <= block_length <= gen_length:
        raise UsageError(f"--block-length {block_length} must be between 1 and --gen-length {gen_length}")
    if gen_length % block_length:
        raise UsageError(
            f"--gen-length {gen_length} must be a multiple of --block-length {block_length}: "
            f"use {multiples_near(gen_length, block_length)}"
        )


def check_steps(steps: int, gen_length: int, blocks: int) -> None:
    if steps > gen_length:
        raise UsageError(
            f"--steps {steps} is more than --gen-length {gen_length}: every step commits at least one "
            f"token, so use at most {gen_length}"
        )
    if steps < 1 or steps % blocks:
        raise UsageError(
            f"--steps {steps} must be a multiple of the number of blocks ({blocks}): "
            f"use {multiples_near(steps, blocks, largest=gen_length)}"
        )


def check_threshold(settings: DiffusionSettings) -> None:
    if settings.edit_threshold is not None and settings.threshold is None:
        raise UsageError(
            "--edit-threshold needs --threshold (editing runs inside confidence-threshold decoding): "
            "add e.g. --threshold 0.7, or use --mode quality"
        )
    if settings.threshold is None:
        return
    if settings.threshold <= 0:
        raise UsageError(
            f"--threshold {settings.threshold} must be more than 0: "
            "try 0.9 (above 1 commits one token per step)"
        )
    if settings.remasking != "low_confidence":
        raise UsageError(
            "--threshold compares the model's confidence, which --remasking random does not use: "
            "use --remasking low_confidence"
        )
    if settings.steps is not None:
        raise UsageError(
            "--steps has no effect with --threshold (the number of steps adapts to the confidence): "
            "drop --steps, or drop --threshold to decode a fixed number of tokens per step"
        )
    if settings.edit_threshold is not None and not 0 <= settings.edit_threshold < 1:
        raise UsageError(f"--edit-threshold {settings.edit_threshold} must be in [0, 1): try 0.5")


def resolve_settings(settings: DiffusionSettings) -> DiffusionSettings:
    """Fill block_length and steps from gen_length and check every coupling between the options.

    With a threshold, steps stays None: each block takes as many steps as it needs (at most
    block_length, or 2 * block_length with editing).
    """
    check_choices(settings)
    gen_length = settings.gen_length
    block_length = settings.block_length
    if block_length is None:
        block_length = default_block_length(max(gen_length, 1))
    check_block_length(gen_length, block_length)
    check_threshold(settings)
    if settings.threshold is not None:
        return replace(settings, block_length=block_length)
    steps = settings.steps if settings.steps is not None else gen_length
    check_steps(steps, gen_length, gen_length // block_length)
    return replace(settings, block_length=block_length, steps=steps)
