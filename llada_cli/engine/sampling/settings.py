"""Sampler settings, declared once as options: defaults derived from gen_length, and the couplings.

Options are named by field (`gen_length`); the CLI shows them as flags.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import UsageError, named
from ..options import check_options, option
from .cache import CACHES
from .remasking import REMASKING

# LLaDA 2.1 presets (docs/algorithms.md section 8).
MODES: dict[str, dict[str, float | None]] = {
    "quality": dict(threshold=0.7, edit_threshold=0.5),
    "speed": dict(threshold=0.5, edit_threshold=None),
}


@dataclass(frozen=True)
class SamplingSettings:
    """What both tracks share."""

    temperature: float = option(0.0, "0 = greedy / argmax: deterministic.", aliases=("gen_temp",), at_least=0)
    top_k: int = option(
        0, "Sample from the k most likely tokens (0: off).", aliases=("gen_top_k",), at_least=0
    )
    compile: bool = option(False, "torch.compile the transformer blocks (pays off over many prompts).")

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True)
class ARSettings(SamplingSettings):
    max_new_tokens: int = option(
        128, "AR: tokens to generate (diffusion: the same as `gen_length`).", at_least=1
    )
    top_p: float = option(1.0, "AR: nucleus sampling mass (1: off).", above=0, at_most=1)
    repetition_penalty: float = option(1.0, "AR: >1 discourages repeats (1: off).", above=0)


@dataclass(frozen=True)
class DiffusionSettings(SamplingSettings):
    gen_length: int = option(128, "Answer slots to denoise.", at_least=1)
    steps: int | None = option(None, "Denoising steps (default: the gen length).", aliases=("gen_steps",))
    block_length: int | None = option(
        None, "Semi-autoregressive block size (default: 32 when it divides the gen length)."
    )
    remasking: str = option("low_confidence", "Which slots to commit each step.", choices=REMASKING)
    cfg_scale: float = option(0.0, "Classifier-free guidance (0: off).", at_least=0)
    suppress_eos: bool = option(False, "Never predict EOS.")
    eos_confidence: bool = option(True, "Whether EOS may be committed by confidence.", negatable=True)
    early_stop: bool = True  # a row ends once a committed EOS closes its answer
    threshold: float | None = option(
        None,
        "Parallel decoding: commit all above this confidence (Fast-dLLM).",
        aliases=("gen_confidence_threshold",),
        above=0,
    )
    cap_start_ratio: float | None = option(
        None,
        "With `threshold`: commit at most this share of a block's masks per step at its start...",
        aliases=("gen_cap_start_ratio",),
        above=0,
        at_most=1,
    )
    cap_end_ratio: float | None = option(
        None,
        "...rising linearly to this share as the block fills.",
        aliases=("gen_cap_end_ratio",),
        above=0,
        at_most=1,
    )
    max_decode_per_step: int = option(
        0,
        "With `threshold`: commit at most this many per step (0: no limit).",
        aliases=("gen_max_decode_per_step",),
        at_least=0,
    )
    repeat_penalty: float = option(
        0.0,
        "Lower each token's logit by this times its count in the last `repeat_window` decided tokens.",
        aliases=("gen_repeat_penalty",),
        at_least=0,
    )
    repeat_window: int = option(
        128, "Tokens `repeat_penalty` counts (0: all).", aliases=("gen_repeat_window",), at_least=0
    )
    cache: str = option("none", "Block KV cache (Fast-dLLM).", choices=CACHES)
    edit_threshold: float | None = option(
        None, "LLaDA 2.1 token editing (with `threshold`).", at_least=0, below=1
    )
    mode: str | None = option(
        None, "LLaDA 2.1 presets: quality (threshold 0.7, editing 0.5) or speed (0.5).", choices=MODES
    )

    @property
    def resolved(self) -> bool:
        return self.block_length is not None and (self.steps is not None or self.threshold is not None)


def default_block_length(gen_length: int) -> int:
    return min(gen_length, 32) if gen_length % min(gen_length, 32) == 0 else gen_length


def multiples_near(value: int, unit: int, largest: int | None = None) -> str:
    """The multiples of `unit` just below and above `value` that are allowed, as 'a or b'."""
    below, above = value // unit * unit, (value // unit + 1) * unit
    options = [m for m in (below, above) if m > 0 and (largest is None or m <= largest)]
    return " or ".join(str(m) for m in options)


def check_block_length(gen_length: int, block_length: int) -> None:
    if not 1 <= block_length <= gen_length:
        raise UsageError(
            f"{named('block_length')} {block_length} must be between 1 and {named('gen_length')} {gen_length}"
        )
    if gen_length % block_length:
        raise UsageError(
            f"{named('gen_length')} {gen_length} must be a multiple of {named('block_length')} "
            f"{block_length}: use {multiples_near(gen_length, block_length)}"
        )


def check_steps(steps: int, gen_length: int, blocks: int) -> None:
    if steps > gen_length:
        raise UsageError(
            f"{named('steps')} {steps} is more than {named('gen_length')} {gen_length}: every step commits "
            f"at least one token, so use at most {gen_length}"
        )
    if steps < 1 or steps % blocks:
        raise UsageError(
            f"{named('steps')} {steps} must be a multiple of the number of blocks ({blocks}): "
            f"use {multiples_near(steps, blocks, largest=gen_length)}"
        )


def check_threshold(settings: DiffusionSettings) -> None:
    capped = settings.cap_start_ratio is not None or settings.cap_end_ratio is not None
    if (capped or settings.max_decode_per_step) and settings.threshold is None:
        raise UsageError(
            f"{named('cap_start_ratio')}, {named('cap_end_ratio')} and {named('max_decode_per_step')} "
            f"limit threshold decoding: add {named('threshold')}, e.g. 0.9"
        )
    if settings.edit_threshold is not None and settings.threshold is None:
        raise UsageError(
            f"{named('edit_threshold')} needs {named('threshold')} (editing runs inside "
            f"confidence-threshold decoding): add e.g. {named('threshold')} 0.7, "
            f"or use {named('mode')} quality"
        )
    if settings.threshold is None:
        return
    if settings.remasking != "low_confidence":
        raise UsageError(
            f"{named('threshold')} compares the model's confidence, which {named('remasking')} random "
            f"does not use: use {named('remasking')} low_confidence"
        )
    if settings.steps is not None:
        raise UsageError(
            f"{named('steps')} has no effect with {named('threshold')} (the number of steps adapts to the "
            f"confidence): drop {named('steps')}, or drop {named('threshold')} to decode a fixed number "
            "of tokens per step"
        )


def resolve_settings(settings: DiffusionSettings) -> DiffusionSettings:
    """Apply the mode preset, fill block_length and steps from gen_length, check every coupling.

    With a threshold, steps stays None: each block takes as many steps as it needs (at most
    block_length, or 2 * block_length with editing).
    """
    if settings.mode is not None:
        preset = {k: v for k, v in MODES[settings.mode].items() if getattr(settings, k) is None}
        settings = replace(settings, **preset)
    gen_length = settings.gen_length
    block_length = settings.block_length
    if block_length is None:
        block_length = default_block_length(gen_length)
    check_block_length(gen_length, block_length)
    check_threshold(settings)
    if settings.threshold is not None:
        return replace(settings, block_length=block_length)
    steps = settings.steps if settings.steps is not None else gen_length
    check_steps(steps, gen_length, gen_length // block_length)
    return replace(settings, block_length=block_length, steps=steps)
