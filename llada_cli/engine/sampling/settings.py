"""Sampler settings, declared once as options: defaults derived from gen_length, and the couplings.

Options are named by field (`gen_length`); the CLI shows them as flags.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypedDict

from ..errors import UsageError, named
from ..options import check_options, option

# Answers are this long by default, or shorter when the context leaves less room after the prompt.
DEFAULT_ANSWER = 128
# The default diffusion sampler commits every slot at least this confident (LLaDA 2.0's default
# decoding; docs/algorithms.md section 8); `exact` or `steps` give the reference sampler instead.
DEFAULT_THRESHOLD = 0.9
# How the answer region is laid out (docs/algorithms.md section 7).
METHODS = ("fixed_length", "semi_ar_padding", "semi_ar_origin")
# What a column attends to while decoding; block_causal is how block-diffusion runs were trained.
ATTENTION = ("bidirectional", "block_causal")
# The keys of remasking.REMASKING and cache.CACHES, whose values need torch (a test keeps them in step).
REMASKING_NAMES = ("low_confidence", "margin", "entropy", "random")
CACHE_NAMES = ("none", "prefix", "dual")


class Preset(TypedDict):
    """The settings a mode fills in where they were not given."""

    threshold: float
    edit_threshold: float | None


# LLaDA 2.1 presets (docs/algorithms.md section 8).
MODES: dict[str, Preset] = {
    "quality": Preset(threshold=0.7, edit_threshold=0.5),
    "speed": Preset(threshold=0.5, edit_threshold=None),
}


@dataclass(frozen=True)
class SamplingSettings:
    """What both kinds share."""

    temperature: float = option(0.0, "0 = greedy / argmax: deterministic.", aliases=("gen_temp",), at_least=0)
    top_k: int = option(
        0, "Sample from the k most likely tokens (0: off).", aliases=("gen_top_k",), at_least=0
    )
    compile: bool = option(False, "torch.compile the transformer blocks (pays off over many prompts).")

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True)
class ARSettings(SamplingSettings):
    max_new_tokens: int | None = option(
        None,
        "AR: tokens to generate (default: 128, or what the context leaves after the prompt).",
        at_least=1,
    )
    top_p: float = option(1.0, "AR: nucleus sampling mass (1: off).", above=0, at_most=1)
    repetition_penalty: float = option(1.0, "AR: >1 discourages repeats (1: off).", above=0)


@dataclass(frozen=True)
class DiffusionSettings(SamplingSettings):
    gen_length: int | None = option(
        None,
        "Answer slots to denoise (default: 128, or what the context leaves after the prompt, "
        "in whole blocks).",
        at_least=1,
    )
    method: str = option(
        "semi_ar_padding",
        "fixed_length: one block; semi_ar_padding: all slots masked from the start, decoded block by "
        "block; semi_ar_origin: blocks appended one at a time, until an EOS.",
        choices=METHODS,
    )
    attention: str = option(
        "bidirectional",
        "block_causal: each block sees itself and earlier blocks, as block diffusion trains (the default "
        "for such runs; its cache is exact).",
        choices=ATTENTION,
    )
    exact: bool = option(
        False, "The reference sampler: a fixed number of slots per step (`steps`), no threshold."
    )
    steps: int | None = option(
        None, "Denoising steps, with `exact` (default: the gen length).", aliases=("gen_steps",), at_least=1
    )
    block_length: int | None = option(
        None, "Semi-autoregressive block size (default: 32 when it divides the gen length).", at_least=1
    )
    remasking: str = option(
        "low_confidence",
        "Which slots commit first: low_confidence (the candidate's probability), margin (top minus "
        "second probability), entropy (exp(-entropy)), random.",
        choices=REMASKING_NAMES,
    )
    cfg_scale: float = option(0.0, "Classifier-free guidance (0: off).", at_least=0)
    suppress_eos: bool = option(False, "Never predict EOS.")
    eos_confidence: bool = option(True, "Whether EOS may be committed by confidence.", negatable=True)
    early_stop: bool = True  # a row ends once a committed EOS closes its answer
    threshold: float | None = option(
        None,
        f"Commit every slot above this confidence (default {DEFAULT_THRESHOLD} unless `exact`, "
        "`steps` or random remasking).",
        aliases=("gen_confidence_threshold",),
        above=0,
        at_most=1,
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
    cache: str = option("none", "Block KV cache (Fast-dLLM).", choices=CACHE_NAMES)
    edit_threshold: float | None = option(
        None, "LLaDA 2.1 token editing (with `threshold`).", at_least=0, below=1
    )
    mode: str | None = option(
        None, "LLaDA 2.1 presets: quality (threshold 0.7, editing 0.5) or speed (0.5).", choices=MODES
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode is None:
            return
        preset = MODES[self.mode]  # a mode is these values: one given otherwise contradicts it
        for name in ("threshold", "edit_threshold"):
            value = getattr(self, name)
            if value is not None and value != preset[name]:
                raise UsageError(
                    f"{named('mode')} {self.mode} sets {_preset_words(self.mode)}: drop {named(name)} "
                    f"{value}, or drop {named('mode')} to set the thresholds yourself"
                )


def _preset_words(mode: str) -> str:
    preset = MODES[mode]
    edit = preset["edit_threshold"]
    words = f"{named('threshold')} {preset['threshold']}"
    return words + (f" and {named('edit_threshold')} {edit}" if edit is not None else " and no editing")


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
    if settings.remasking == "random":
        raise UsageError(
            f"{named('threshold')} compares the model's confidence, which {named('remasking')} random "
            f"does not use: use {named('remasking')} low_confidence, margin or entropy"
        )
    if settings.steps is not None:
        raise UsageError(
            f"{named('steps')} has no effect with {named('threshold')} (the number of steps adapts to the "
            f"confidence): drop {named('steps')}, or drop {named('threshold')} to decode a fixed number "
            "of tokens per step"
        )


def resolve_settings(settings: DiffusionSettings, room: int | None = None) -> DiffusionSettings:
    """Apply the mode preset and the default threshold, fit gen_length to the `room` the context
    leaves after the prompt, fill block_length and steps, and check every coupling. Idempotent.

    With a threshold, steps stays None: each block takes as many steps as it needs (at most
    block_length, or 2 * block_length with editing).
    """
    if settings.mode is not None:
        preset = MODES[settings.mode]
        threshold, edit_threshold = settings.threshold, settings.edit_threshold
        settings = replace(
            settings,
            threshold=preset["threshold"] if threshold is None else threshold,
            edit_threshold=preset["edit_threshold"] if edit_threshold is None else edit_threshold,
        )
    settings = with_default_threshold(settings)
    gen_length, block_length = _answer_layout(settings, room)
    check_block_length(gen_length, block_length)
    check_threshold(settings)
    settings = replace(settings, gen_length=gen_length, block_length=block_length)
    if settings.threshold is not None:
        return settings
    steps = settings.steps if settings.steps is not None else gen_length
    check_steps(steps, gen_length, gen_length // block_length)
    return replace(settings, steps=steps)


def resolved(value: int | None, name: str) -> int:
    """A setting that resolve_settings or resolve_ar_settings fills in, read by the sampler after them."""
    if value is None:
        raise ValueError(f"{name} is unset: the settings were not resolved")
    return value


def check_room(room: int) -> None:
    if room < 1:
        raise UsageError(
            "the prompt fills the model's whole context: no room is left for an answer; shorten it"
        )


def resolve_ar_settings(settings: ARSettings, room: int) -> ARSettings:
    """max_new_tokens fitted to the `room` the context leaves after the prompt (the model was not
    trained on positions past its context; `inference_rope_scaling` stretches that context)."""
    check_room(room)
    wanted = settings.max_new_tokens
    if wanted is not None and wanted > room:
        raise UsageError(
            f"{named('max_new_tokens')} {wanted} does not fit: the prompt leaves {room} tokens of the "
            f"model's context; use at most {room} (a model trained with "
            f"{named('inference_rope_scaling')} has a longer one)"
        )
    return replace(settings, max_new_tokens=wanted or min(DEFAULT_ANSWER, room))


def with_default_threshold(settings: DiffusionSettings) -> DiffusionSettings:
    if settings.exact and settings.threshold is not None:
        source = f"{named('mode')} {settings.mode}" if settings.mode else named("threshold")
        raise UsageError(f"{named('exact')} decodes a fixed number of slots per step: drop {source}")
    fixed = settings.exact or settings.steps is not None or settings.remasking == "random"
    if settings.threshold is None and not fixed:
        return replace(settings, threshold=DEFAULT_THRESHOLD)
    return settings


def _answer_layout(settings: DiffusionSettings, room: int | None) -> tuple[int, int]:
    """(gen_length, block_length): the given ones, or the longest answer of whole blocks that fits."""
    gen_length, block_length = settings.gen_length, settings.block_length
    if room is not None:
        check_room(room)
    if gen_length is not None and room is not None and gen_length > room:
        raise UsageError(
            f"{named('gen_length')} {gen_length} does not fit: the prompt leaves {room} slots of the "
            f"model's context; use at most {room}, or leave {named('gen_length')} out to fit it"
        )
    fixed_length = settings.method == "fixed_length"
    if fixed_length and block_length is not None and gen_length not in (None, block_length):
        raise UsageError(
            f"{named('method')} fixed_length decodes the answer as one block: drop {named('block_length')}"
        )
    if gen_length is None:
        gen_length = min(DEFAULT_ANSWER, room or DEFAULT_ANSWER)
        unit = block_length or min(gen_length, 32)
        if not fixed_length and gen_length >= unit:
            gen_length = gen_length // unit * unit
        elif not fixed_length:
            raise UsageError(
                f"{named('block_length')} {block_length} is more than the {gen_length} slots the prompt "
                f"leaves of the model's context; lower it"
            )
    if fixed_length:
        return gen_length, gen_length
    return gen_length, block_length or default_block_length(gen_length)
