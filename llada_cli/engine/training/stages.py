"""The training stages a user runs: pretrain AR, pretrain diffusion (optionally from an AR run), SFT,
DPO and GRPO.

run_stage reads top to bottom: resolve the request (request.py), claim the run folder (a new one
is created and locked; a resumed one is locked and cleaned, runs/lifecycle.py), build the starting
point (starting_point.py), the data (data/splits.py), the plan and the objective once, write
run.json once, fit (trainer.py), and record how the run ended. A resumed run rebuilds the same
pieces from its run.json, so only the checkpoint decides where it continues.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import TypedDict

import torch

from ..config import TrainConfig
from ..data.splits import StageData, stage_data
from ..model.tokenizer import Tokenizer
from ..model.transformer import Transformer
from ..objective_configs import ARGRPOConfig
from ..objectives.build import make_objective
from ..options import option_values
from ..runs import lifecycle
from ..runs.folder import Run
from ..runs.record import RunInfo, Status
from ..runs.registry import Creation, Registry
from ..runtime.device import resolve_device
from ..runtime.distributed import World
from .loggers import check_logger
from .plan import StepPlan
from .request import StageRequest, resolved
from .rollouts import Rollout
from .starting_point import Start, load_parent, reopened, starting_point
from .trainer import EventHandler, Trainer, TrainEvent


def run_stage(
    registry: Registry,
    request: StageRequest,
    on_event: EventHandler | None = None,
    world: World | None = None,
) -> Run:
    device = resolve_device(request.run.device or "auto")
    world = world or World.join(device)
    if device.type == "cuda" and world.world_size > 1:
        device = torch.device("cuda", world.local_rank)
    with ExitStack() as owned:  # what the main process owns until training ends: the run's lock
        if request.run.resume and world.is_main:  # locked before its run.json is read
            owned.enter_context(lifecycle.reopen(registry, request.run.run_name))
        request = resolved(registry, request)
        check_logger(request.train.logger)  # before anything is written
        torch.manual_seed(request.train.seed)
        run, creation = _run_folder(registry, request, world)
        if creation is not None:
            owned.enter_context(creation.lock)
        on_event = lifecycle.dropping_replaced(registry, creation, on_event)
        try:
            start = _start(registry, request, run, world)
            parameters = start.model.num_parameters  # counted before a sharded model splits them
            seq_len = request.seq_len or start.model.config.seq_len  # shorter than the context if given
            config = request.objective_config()
            config.check_row_length(seq_len)
            # GRPO's rows are prompts: the context less the answers sampled after them
            rows = seq_len - config.gen_length if isinstance(config, ARGRPOConfig) else seq_len
            data = stage_data(
                registry,
                request.resolved_kind,
                request.stage,
                request.data,
                start.tokenizer,
                run.tokenizer_path,
                rows,
                request.train.batch_size,
                request.train.eval_batches,
                request.train.seed,
                on_progress=_tokenizing_reporter(on_event, world),
            )
            plan = StepPlan.of(request.train, data.train_rows, world.world_size)
            rollout = None
            if isinstance(config, ARGRPOConfig) and data.answers is not None:
                rollout = Rollout(request.resolved_kind, start.tokenizer, data.answers, config)
            objective = make_objective(
                config,
                start.tokenizer.mask_id,
                start.tokenizer.eos_id,
                plan.total,
                _reference(registry, request, device),
                rollout,
                plan.accumulation,
            )
            trainer = Trainer(
                start.model,
                objective,
                data.train_batch,
                data.train_rows,
                data.val_batches,
                request.train,
                plan,
                run,
                device,
                on_event,
                data_summary={**data.summary, "what": _what(request), "objective": option_values(config)},
                world=world,
            )
            if request.run.resume:
                trainer.resume()
        except BaseException:
            if creation is not None:  # a run that never started leaves nothing behind
                lifecycle.abandon(registry, run, creation)
            raise
        if world.is_main:
            lifecycle.start(run, _record(request, run, start, parameters, seq_len, data, trainer))
        with lifecycle.recording_failure(run, world):
            trainer.fit()
    # Only after success: a failing process just exits, and torchrun ends the others, which may
    # be waiting in a collective that a goodbye barrier would never match.
    world.leave()
    return run


def _run_folder(registry: Registry, request: StageRequest, world: World) -> tuple[Run, Creation | None]:
    """The run's folder: a resumed one, or a new one the main process creates and locks (moving an
    overwritten run aside until the new one saves its first checkpoint)."""
    name = request.run.run_name
    if request.run.resume:
        return registry.existing(name), None
    if not world.is_main:  # the main process creates it
        return Run(registry.runs_dir / name), None
    return registry.prepare_new(name, request.run.overwrite)


def _start(registry: Registry, request: StageRequest, run: Run, world: World) -> Start:
    """The model and tokenizer: a new run's starting point, its tokenizer saved in the folder (the
    main process trains it; the others wait, then read it); or the resumed run's."""
    if request.run.resume:
        return reopened(registry, request, run)
    if not world.is_main:
        world.barrier()
        return starting_point(registry, request, Tokenizer.load(run.tokenizer_path))
    start = starting_point(registry, request)
    start.tokenizer.save(run.tokenizer_path)
    world.barrier()
    return start


def _reference(registry: Registry, request: StageRequest, device: torch.device) -> Transformer | None:
    """DPO's and GRPO's frozen reference: the base run's weights (on resume too: run.json names the base)."""
    if request.stage not in ("dpo", "grpo") or request.parent is None:
        return None
    model = load_parent(registry, request.parent, request.tokenizer.path).model
    return model.to(device).eval().requires_grad_(False)


class _Started(TypedDict):
    """What run.json records as training starts, new run or resumed."""

    status: Status
    train: TrainConfig
    total_steps: int
    device: str
    dtype: str
    data_summary: dict[str, int]


def _record(
    request: StageRequest,
    run: Run,
    start: Start,
    parameters: int,
    seq_len: int,
    data: StageData,
    trainer: Trainer,
) -> RunInfo:
    """run.json as training starts: the request, and what preparing it found (the data, the plan,
    the device and dtype); a resumed run keeps its record and takes the new training settings."""
    started = _Started(
        status="running",
        train=trainer.config,  # the dtype resolved; a resume may have extended max_steps
        total_steps=trainer.plan.total,
        device=str(trainer.device),
        dtype=trainer.config.dtype,
        data_summary=data.summary,
    )
    if request.run.resume:
        return run.info().updated(**started)
    return RunInfo(
        name=run.name,
        kind=request.resolved_kind,
        stage=request.stage,
        model=start.model.config,
        parameters=parameters,
        parent=start.parent,
        preset=None if start.parent else request.start.preset,
        data=request.data,
        objective=request.objective_config(),
        seq_len=seq_len,
        command=request.command,
        **started,
    )


def _tokenizing_reporter(on_event: EventHandler | None, world: World) -> Callable[[int, int], None] | None:
    """Tokenization progress as "prepare" events (bytes read of the file), from the main process."""
    if on_event is None or not world.is_main:
        return None
    return lambda done, total: on_event(TrainEvent("prepare", done, total, {"what": "tokenizing"}))


def _what(request: StageRequest) -> str:
    """'AR pretraining, preset small' or 'diffusion SFT of dlm-base': the run's first words."""
    kind = "AR" if request.kind == "ar" else "diffusion"
    if request.stage != "pretrain":
        return f"{kind} {request.stage.upper()} of {request.parent}"
    if request.parent:
        return f"{kind} pretraining from {request.parent}"
    return f"{kind} pretraining, preset {request.start.preset}"
