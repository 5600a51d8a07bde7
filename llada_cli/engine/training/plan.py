"""The plan of one run: micro-batches per optimizer step, the total steps, warmup and cadences."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import TrainConfig
from ..errors import UsageError, named
from ..schedules import warmup_steps


def accumulation(config: TrainConfig, world_size: int) -> int:
    """Micro-batches per optimizer step: grad_accum, or what global_batch_size leaves to each process."""
    if config.global_batch_size is None:
        return config.grad_accum
    per_step = config.batch_size * world_size
    if config.global_batch_size % per_step:
        raise UsageError(
            f"{named('global_batch_size')} {config.global_batch_size} is not a multiple of "
            f"{named('batch_size')} {config.batch_size} x {world_size} processes = {per_step}"
        )
    return config.global_batch_size // per_step


def plan_steps(config: TrainConfig, train_rows: int, world_size: int = 1) -> int:
    """Total optimizer steps: max_steps, epochs, or whichever of the two ends first when both are
    given (as litgpt and the Hugging Face Trainer do); one epoch by default."""
    rows_per_step = config.batch_size * accumulation(config, world_size) * world_size
    epoch_steps = max(1, math.ceil((config.epochs or 1.0) * train_rows / rows_per_step))
    if config.max_steps is None:
        return epoch_steps
    return config.max_steps if config.epochs is None else min(config.max_steps, epoch_steps)


@dataclass(frozen=True)
class StepPlan:
    """How many optimizer steps one run takes, of how many micro-batches each, and its warmup,
    evaluation and save cadences: derived once, from the config and the rows of training data."""

    total: int
    accumulation: int
    warmup: int
    eval_every: int
    save_every: int

    @classmethod
    def of(cls, config: TrainConfig, train_rows: int, world_size: int = 1) -> StepPlan:
        total = plan_steps(config, train_rows, world_size)
        eval_every = config.eval_every or max(1, total // 10)
        return cls(
            total,
            accumulation(config, world_size),
            warmup_steps(config.warmup_steps, total),
            eval_every,
            config.save_every or eval_every,
        )
