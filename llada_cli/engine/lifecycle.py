"""A training run's folder through its life: created (or reopened to resume), started, and ended
with a status in run.json (running, interrupted, failed, completed, early_stopped).

Only the main process writes (distributed.py), and it owns the run while it trains: the run's lock
(locks.py) refuses a second writer. An overwritten run is moved aside until the new one has saved
its first checkpoint, so a new run that fails its checks, or is killed, gives the old one back.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from .config import TrainConfig
from .distributed import World
from .errors import LladaError, UsageError, named
from .locks import RunLock, refuse_if_busy
from .model import Transformer
from .registry import Creation, Registry
from .run_folder import Run
from .runinfo import RunInfo, a_kind
from .tokenizer import Tokenizer

if TYPE_CHECKING:
    from .stages import StageRequest
    from .trainer import EventHandler, Trainer, TrainEvent


@dataclass
class Prepared:
    """Everything a stage needs before training starts."""

    run: Run
    model: Transformer
    tokenizer: Tokenizer
    creation: Creation | None = None  # a new run's lock and the run it replaces (main process)


def claim(registry: Registry, request: StageRequest) -> AbstractContextManager[object]:
    """What the main process owns before it reads a run: a resumed run is locked, and cleaned of
    what a killed checkpoint write left. An overwritten run is only checked now (before a tokenizer
    is trained for nothing): it is locked when it is moved aside."""
    name = request.run.run_name
    if request.run.overwrite:
        refuse_if_busy(registry.runs_dir / name)
    if not request.run.resume:
        return nullcontext()
    run = registry.existing(name)
    lock = RunLock.acquire(run.path)
    run.clean_leftovers()
    return lock


def create_run(
    registry: Registry,
    request: StageRequest,
    model: Transformer,
    tokenizer: Tokenizer,
    parent: str | None,
    seq_len: int,
    world: World,
) -> Prepared:
    """A new run folder with its tokenizer and run.json, made by the main process; then the other
    processes, waiting at the barrier, open it."""
    run, creation = registry.prepare_new(request.run.run_name, request.run.overwrite)
    objective = request.objective_config()
    try:
        tokenizer.save(run.tokenizer_path)
        run.write_info(
            RunInfo(
                name=request.run.run_name,
                kind=request.kind,
                stage=request.stage,
                model=model.config,
                parameters=model.num_parameters,
                parent=parent,
                preset=None if parent else request.start.preset,
                train=request.train,
                data=request.data,
                objective=objective,
                seq_len=seq_len,
                command=request.command,
            )
        )
    except BaseException:
        registry.restore_replaced(run, creation)
        raise
    world.barrier()
    return Prepared(run, model, tokenizer, creation)


def request_from_run(registry: Registry, request: StageRequest) -> StageRequest:
    """A resume request: the stored settings win. `max_steps` may extend the run; any other
    option given that differs from the stored run is refused, with the list of differences."""
    run = registry.existing(request.run.run_name)
    info = run.info()
    if info.train is None:
        raise UsageError(f"run '{run.name}' was {info.stage}, not trained: there is nothing to resume")
    command = "sft" if info.stage == "sft" else f"pretrain {info.kind}"
    asked = "sft" if request.stage == "sft" else f"pretrain {request.kind}"
    if asked != command:
        raise UsageError(
            f"run '{run.name}' is {a_kind(info.kind)} {info.stage} run: resume it with `llada {command}`"
        )
    if info.step > 0 and run.latest_step() is None:  # its checkpoints were removed by hand
        raise LladaError(
            f"run '{run.name}' reached step {info.step} but {run.checkpoints_dir} holds no checkpoint: "
            f"there is nothing to resume from; start it over with {named('overwrite')}"
        )
    train = info.train
    if "max_steps" in request.train_given and request.train.max_steps != train.max_steps:
        train = extended(run.name, info.step, train, request.train.max_steps)
    elif info.is_finished:
        raise UsageError(
            f"run '{run.name}' already finished ({info.status} at step {info.step}); to train it further, "
            f"give {named('resume')} with {named('max_steps')} above {info.step}"
        )
    if "logger" in request.train_given:  # where metrics also go may change on resume
        train = replace(train, logger=request.train.logger)
    differences = [
        *_differences(request.train, info.train, request.train_given - {"max_steps", "epochs", "logger"}),
        *_differences(request.data, info.data, request.data_given),
        *_differences(request.model, info.model, request.model_given),
        *_differences(request.objective, info.objective, request.objective_given),
    ]
    if differences:
        raise UsageError(
            f"run '{run.name}' was trained with other settings; {named('resume')} continues it as it was: "
            + "; ".join(differences)
            + f" (or start a new run, or {named('overwrite')} this one)"
        )
    return replace(
        request,
        kind=info.kind,
        stage=info.stage,
        model=info.model,
        model_given=frozenset(),
        seq_len=info.seq_len,
        train=train,
        data=info.data,
        objective=info.objective,
        parent=info.parent,
        start=replace(request.start, preset=info.preset or request.start.preset),
    )


def extended(name: str, step: int, train: TrainConfig, max_steps: int) -> TrainConfig:
    """The stored training settings with a new step count (not below the steps already done)."""
    if max_steps <= step:
        raise UsageError(
            f"run '{name}' is at step {step}: {named('max_steps')} {max_steps} would not train it further"
        )
    return replace(train, max_steps=max_steps, epochs=None)


def _differences(given: object, stored: object, names: frozenset[str] | set[str]) -> list[str]:
    """'`field` 0.001 (the run has 0.003)' for each given option whose value differs from the run's."""
    if given is None or stored is None:
        return []
    return [
        f"{named(name)} {getattr(given, name)} (the run has {getattr(stored, name)})"
        for name in sorted(names)
        if hasattr(stored, name) and getattr(given, name) != getattr(stored, name)
    ]


def finish_failed_start(registry: Registry, prepared: Prepared) -> None:
    """A run that never started leaves nothing behind, and an overwritten one comes back."""
    if prepared.creation is not None:
        registry.restore_replaced(prepared.run, prepared.creation)


def dropping_replaced(
    registry: Registry, prepared: Prepared, on_event: EventHandler | None
) -> EventHandler | None:
    """`on_event`, and the overwritten run deleted once the new one has saved its first checkpoint:
    until then a killed new run leaves the old one to `Registry.recover`."""
    creation = prepared.creation
    if creation is None or creation.replaced is None:
        return on_event

    def handle(event: TrainEvent) -> None:
        if event.kind == "checkpoint":
            registry.drop_replaced(creation)
        if on_event is not None:
            on_event(event)

    return handle


def started(prepared: Prepared, trainer: Trainer, device: torch.device) -> None:
    if trainer.world.is_main:
        prepared.run.update_info(
            status="running",
            train=trainer.config,  # a resume may have extended max_steps
            total_steps=trainer.schedule.total,
            device=str(device),
            dtype=trainer.config.dtype,
        )


def fit_recording_status(run: Run, fit: Callable[[], str], world: World) -> str:
    """Train; an interruption or a failure is written into run.json before it propagates."""
    try:
        return fit()
    except KeyboardInterrupt:
        if world.is_main:
            run.update_info(status="interrupted")
        raise
    except Exception:
        if world.is_main:
            run.update_info(status="failed")
        raise
