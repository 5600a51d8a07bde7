"""Learning-rate schedules and the WSD block-size curriculum: pure functions of the step (or progress).

docs/algorithms.md section 4 for the block curriculum. Steps are 0-based; the last step of a run is
total_steps - 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .errors import UsageError, named

# Progress values come from step / total; this absorbs float error at phase boundaries.
_TOLERANCE = 1e-9


def warmup_steps(requested: int | None, total_steps: int) -> int:
    """The warmup a run uses: 5% of the steps by default; one as long as the run (or longer) is cut
    to a tenth of it, so the run still reaches its peak learning rate."""
    if requested is None:
        return max(1, total_steps // 20)
    return requested if requested < total_steps else total_steps // 10


# Decays after warmup: the share of (peak - floor) left after `done` of `span` post-warmup steps.
def _constant(done: int, span: int, stable_ratio: float) -> float:
    return 1.0


def _cosine(done: int, span: int, stable_ratio: float) -> float:
    """Half a cosine: reaches the floor exactly at the last step."""
    return 0.5 * (1.0 + math.cos(math.pi * _fraction(done + 1, span)))


def _wsd(done: int, span: int, stable_ratio: float) -> float:
    """Warmup-stable-decay: the peak for stable_ratio of the steps, then a LINEAR decay to the floor."""
    stable = int(stable_ratio * span)
    if done < stable:
        return 1.0
    return 1.0 - _fraction(done - stable + 1, span - stable)


LR_SCHEDULES: dict[str, Callable[[int, int, float], float]] = {
    "cosine": _cosine,
    "wsd": _wsd,
    "constant": _constant,
}


def learning_rate(
    step: int,
    total_steps: int,
    base_lr: float,
    schedule: str,
    warmup: int,
    stable_ratio: float = 0.4,
    min_lr_ratio: float = 0.1,
) -> float:
    """The learning rate of 0-based `step`, `warmup` as `warmup_steps` gives it.

    Warmup: linear, step s uses base_lr * (s + 1) / warmup, so the last warmup step is at base_lr.
    Then the schedule (LR_SCHEDULES) from base_lr down to min_lr_ratio * base_lr, which both
    decays reach exactly at the last step and keep after it.
    """
    if schedule not in LR_SCHEDULES:
        raise UsageError(
            f"{named('lr_schedule')} '{schedule}' is unknown: use one of {', '.join(LR_SCHEDULES)}"
        )
    if step < warmup:
        return base_lr * (step + 1) / warmup
    min_lr = base_lr * min_lr_ratio
    left = LR_SCHEDULES[schedule](step - warmup, total_steps - warmup, stable_ratio)
    return min_lr + (base_lr - min_lr) * left


def _fraction(done: int, total: int) -> float:
    """done / total in [0, 1], with an empty phase counting as finished."""
    return min(1.0, done / total) if total > 0 else 1.0


def phase_steps(total_steps: int, warmup_ratio: float, stable_ratio: float) -> tuple[int, int, int]:
    """(warmup, stable, decay) step counts of a warmup-stable-decay schedule (Nano-LLaDA's rounding)."""
    warmup, stable = int(total_steps * warmup_ratio), int(total_steps * stable_ratio)
    return warmup, stable, max(total_steps - warmup - stable, 0)


def wsd_mask_ratio(
    step: int, total_steps: int, low: float, high: float, warmup_ratio: float, stable_ratio: float
):
    """The mask ratio of 0-based `step` when mask_schedule is "wsd" (docs/algorithms.md section 4).

    Warmup: linear from `low` to `high` (step s uses low + (high - low)(s + 1)/W); stable: `high`;
    decay: linear from `high` back to `low`, reached at the last step.
    """
    warmup, stable, decay = phase_steps(total_steps, warmup_ratio, stable_ratio)
    if warmup > 0 and step < warmup:
        return low + (high - low) * (step + 1) / warmup
    if step < warmup + stable or decay <= 0:
        return high
    return high - (high - low) * _fraction(step - warmup - stable + 1, decay)


def wsd_block_size(
    step: int,
    total_steps: int,
    seq_len: int,
    block_sizes_up: Sequence[int],
    block_sizes_down: Sequence[int],
    phase_ratios: Sequence[float] = (0.3, 0.5, 0.2),
) -> int:
    """The block size of 0-based `step` under the block curriculum (docs/algorithms.md section 4).

    `phase_ratios` (warmup, stable, decay) are normalised to sum 1. Warmup: block_sizes_up in
    equal shares of the phase (step s of W uses entry int(s / W * n), so the first size trains
    from step 0); stable: seq_len (plain MDLM); decay: block_sizes_down in equal shares. An empty
    list means seq_len for its phase.
    """
    warmup_ratio, stable_ratio = (r / sum(phase_ratios) for r in phase_ratios[:2])
    warmup, stable, decay = phase_steps(total_steps, warmup_ratio, stable_ratio)
    if warmup > 0 and step < warmup:
        return _share(block_sizes_up, step / warmup, seq_len)
    if step < warmup + stable:
        return seq_len
    return _share(block_sizes_down, _fraction(step - warmup - stable, decay), seq_len)


def ramped_weight(step: int, base: float, delay_steps: int, warmup_steps: int) -> float:
    """A loss weight that is 0 for `delay_steps`, then rises linearly to `base` over `warmup_steps`."""
    if base <= 0 or step < delay_steps:
        return 0.0
    if warmup_steps <= 0:
        return base
    return base * _fraction(step - delay_steps + 1, warmup_steps)


def _share(sizes: Sequence[int], fraction: float, default: int) -> int:
    """The entry of `sizes` whose equal share of a phase holds `fraction` (0..1) of it."""
    if not sizes:
        return default
    index = int(fraction * len(sizes) + _TOLERANCE)
    return sizes[min(max(index, 0), len(sizes) - 1)]


def default_block_sizes(seq_len: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The default (up, down) block-size lists for rows of seq_len tokens.

    up: 1, 4, 16, 64 where they divide seq_len and are smaller than it, then seq_len.
    down: seq_len / 2, seq_len / 4, ... while at least 32; for short rows (nothing left) the
    largest proper divisor of seq_len, so the decay phase still trains block decoding.
    """
    up = tuple(b for b in (1, 4, 16, 64) if b < seq_len and seq_len % b == 0) + (seq_len,)
    down: list[int] = []
    size = seq_len
    while size % 2 == 0 and size // 2 >= 32:
        size //= 2
        down.append(size)
    if not down:
        down = [max(b for b in range(1, seq_len) if seq_len % b == 0)] if seq_len > 1 else [1]
    return up, tuple(down)


def validate_block_sizes(sizes: Sequence[int], seq_len: int, field: str) -> None:
    """Raise a one-line UsageError unless every size is a positive divisor of seq_len."""
    if not sizes:
        raise UsageError(f"{named(field)}: give at least one block size, e.g. {_divisor_hint(seq_len)}")
    for size in sizes:
        if size < 1 or seq_len % size:
            raise UsageError(
                f"{named(field)}: {size} does not divide {named('seq_len')} {seq_len}; "
                f"use divisors such as {_divisor_hint(seq_len)}"
            )


def _divisor_hint(seq_len: int) -> str:
    """'1, 2, 4, ..., 128': the divisors of seq_len, shortened when there are many."""
    divisors = [str(d) for d in range(1, seq_len + 1) if seq_len % d == 0]
    if len(divisors) > 5:
        divisors = divisors[:3] + ["...", divisors[-1]]
    return ", ".join(divisors)
