"""The training stages a user runs: pretrain AR, pretrain diffusion (optionally from an AR run), SFT.

run_stage turns a StageRequest into a run folder (lifecycle.py), a starting model and tokenizer
(starting_point.py), data (data/splits.py) and an objective, then hands them to the Trainer. A
resumed run rebuilds the same pieces from its run.json, so only the checkpoint decides where it
continues.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .config import PRESETS, DataConfig, ModelConfig, TrainConfig
from .data.splits import stage_data
from .device import resolve_device
from .distributed import World
from .errors import UsageError, named
from .imported_runs import external_kind, is_checkpoint_file
from .lifecycle import (
    Prepared,
    claim,
    create_run,
    dropping_replaced,
    finish_failed_start,
    fit_recording_status,
    request_from_run,
    started,
)
from .loggers import check_logger
from .model import Transformer
from .objective_configs import OBJECTIVE_CONFIGS
from .objectives import make_objective
from .options import option_values
from .registry import Registry
from .run_folder import Run
from .run_options import RunOptions, StartOptions
from .schedules import plan_steps
from .starting_point import (
    check_inherited_shape,
    continued_as_diffusion,
    fresh_tokenizer,
    load_parent,
    rebuilt,
)
from .tokenizer import Tokenizer, TokenizerOptions
from .trainer import EventHandler, Trainer, TrainEvent

INFERENCE_ROPE_FACTOR = 16.0  # MiniMind's and Nano-LLaDA's YaRN factor


@dataclass(frozen=True)
class StageRequest:
    kind: str  # "ar" or "diffusion"; for SFT, the base run's kind decides
    stage: str  # "pretrain" or "sft"
    run: RunOptions
    train: TrainConfig
    data: DataConfig = DataConfig()
    start: StartOptions = StartOptions()
    tokenizer: TokenizerOptions = TokenizerOptions()
    model: ModelConfig = PRESETS["small"]  # the preset with the shape options given
    model_given: frozenset[str] = frozenset()  # shape options the user gave (checked against a parent)
    objective: Any = None  # an OBJECTIVE_CONFIGS config; None: its defaults
    objective_given: frozenset[str] = frozenset()
    train_given: frozenset[str] = frozenset()  # training and data options the user gave (for --resume)
    data_given: frozenset[str] = frozenset()
    seq_len: int | None = None  # the training row length asked for (None: the model's context)
    parent: str | None = None  # init_from (diffusion pretraining) or base (SFT)
    command: list[str] = field(default_factory=list)

    def objective_config(self) -> Any:
        """The objective's options: those given, else the defaults of this kind and stage."""
        return self.objective or OBJECTIVE_CONFIGS[(self.kind, self.stage)]()


def run_stage(
    registry: Registry,
    request: StageRequest,
    on_event: EventHandler | None = None,
    world: World | None = None,
) -> Run:
    device = resolve_device(request.run.device or "auto")
    world = world or World.join(device)
    run = _run_stage(registry, request, on_event, world, device)
    # Only after success: a failing process just exits, and torchrun ends the others, which may
    # be waiting in a collective that a goodbye barrier would never match.
    world.leave()
    return run


def _run_stage(
    registry: Registry,
    request: StageRequest,
    on_event: EventHandler | None,
    world: World,
    device: torch.device,
) -> Run:
    if device.type == "cuda" and world.world_size > 1:
        device = torch.device("cuda", world.local_rank)
    with ExitStack() as owned:  # the run's lock, held by the main process until training ends
        if world.is_main:
            owned.enter_context(claim(registry, request))
        if request.run.resume:
            request = request_from_run(registry, request)
        elif request.stage == "sft":
            request = _sft_request(registry, request)
        check_logger(request.train.logger)  # before anything is written
        torch.manual_seed(request.train.seed)
        prepared = _prepare(registry, request, world)
        if prepared.creation is not None:
            owned.enter_context(prepared.creation.lock)
        on_event = dropping_replaced(registry, prepared, on_event)
        try:
            trainer = _trainer(registry, request, prepared, device, on_event, world)
        except BaseException:
            finish_failed_start(registry, prepared)
            raise
        started(prepared, trainer, device)
        fit_recording_status(prepared.run, trainer.fit, world)
        return prepared.run


def _sft_request(registry: Registry, request: StageRequest) -> StageRequest:
    """SFT trains the same track as its base run; diffusion-only options on an AR base are refused."""
    if request.parent is None:
        raise UsageError(f"sft needs {named('base')} RUN (the pretrained run to fine-tune)")
    if is_checkpoint_file(request.parent):
        kind = external_kind(Path(request.parent).expanduser())
    else:
        kind = registry.resolve(request.parent)[0].kind
    if kind == "ar" and request.objective_given:
        wrong = ", ".join(named(n) for n in sorted(request.objective_given))
        raise UsageError(f"{wrong} applies to diffusion training; run '{request.parent}' is an AR run")
    return replace(request, kind=kind, objective=None if kind == "ar" else request.objective)


def _prepare(registry: Registry, request: StageRequest, world: World) -> Prepared:
    if request.run.resume:
        return _reopened(registry, request)
    if not world.is_main:
        world.barrier()  # the main process trains the tokenizer and creates the run folder
        return _reopened(registry, request)
    model, tokenizer, parent = _initial_model(registry, request, None)
    return create_run(registry, request, model, tokenizer, parent, _row_length(request, model), world)


def _reopened(registry: Registry, request: StageRequest) -> Prepared:
    """An existing run folder: its tokenizer, and its model (the checkpoint's weights load later)."""
    run = registry.existing(request.run.run_name)
    tokenizer = Tokenizer.load(run.tokenizer_path)
    config = run.info().model
    if run.latest_step() is not None:
        return Prepared(run, Transformer(config), tokenizer)
    return Prepared(run, rebuilt(_initial_model(registry, request, tokenizer)[0], config), tokenizer)


def _initial_model(
    registry: Registry, request: StageRequest, tokenizer: Tokenizer | None
) -> tuple[Transformer, Tokenizer, str | None]:
    """The model training starts from: fresh, an AR run continued as diffusion, or an SFT base."""
    if request.parent is None:
        tokenizer = tokenizer or fresh_tokenizer(
            registry,
            request.kind,
            request.tokenizer.path,
            request.data.data,
            request.data.jsonl_field,
            request.start.vocab_size,
            request.start.tokenizer_sample_mb,
        )
        config = replace(
            request.model,
            vocab_size=tokenizer.vocab_size,
            seq_len=max(request.model.seq_len, request.start.max_position_embeddings or 0),
            causal=request.kind == "ar",
            logit_shift=request.kind == "diffusion"
            and request.objective_config().shifts_logits(from_ar=False),
            rope_scaling=INFERENCE_ROPE_FACTOR if request.start.inference_rope_scaling else 1.0,
        )
        return Transformer(config), tokenizer, None
    parent = load_parent(registry, request.parent, request.tokenizer.path)
    check_inherited_shape(parent.model.config, request.model, request.model_given, parent.label)
    model, parent_tokenizer = parent.model, parent.tokenizer
    if request.stage == "pretrain":
        shift = request.objective_config().shifts_logits(from_ar=True)
        model, parent_tokenizer = continued_as_diffusion(parent, shift)
    if request.start.inference_rope_scaling:
        model = rebuilt(model, replace(model.config, rope_scaling=INFERENCE_ROPE_FACTOR))
    context = max(request.seq_len or 0, request.start.max_position_embeddings or 0)
    if context > model.config.seq_len:  # e.g. SFT at 512 after pretraining at 256
        model = rebuilt(model, replace(model.config, seq_len=context))
    if "dropout" in request.model_given:  # a training choice, not part of the inherited shape
        model = rebuilt(model, replace(model.config, dropout=request.model.dropout))
    model.train()
    return model, tokenizer or parent_tokenizer, parent.label


def _row_length(request: StageRequest, model: Transformer) -> int:
    """Row length: the given seq_len (also shorter than a parent's context), else the model's."""
    return request.seq_len or model.config.seq_len


def _tokenizing_reporter(on_event: EventHandler | None, world: World) -> Callable[[int, int], None] | None:
    """Tokenization progress as "prepare" events (bytes read of the file), from the main process."""
    if on_event is None or not world.is_main:
        return None
    return lambda done, total: on_event(TrainEvent("prepare", done, total, {"what": "tokenizing"}))


def _what(request: StageRequest) -> str:
    """'AR pretraining, preset small' or 'diffusion SFT of dlm-base': the run's first words."""
    kind = "AR" if request.kind == "ar" else "diffusion"
    if request.stage == "sft":
        return f"{kind} SFT of {request.parent}"
    if request.parent:
        return f"{kind} pretraining from {request.parent}"
    return f"{kind} pretraining, preset {request.start.preset}"


def _trainer(
    registry: Registry,
    request: StageRequest,
    prepared: Prepared,
    device: torch.device,
    on_event: EventHandler | None,
    world: World,
) -> Trainer:
    seq_len = _row_length(request, prepared.model)
    data = stage_data(
        registry,
        request.kind,
        request.stage,
        request.data,
        prepared.tokenizer,
        prepared.run.tokenizer_path,
        seq_len,
        request.train.batch_size,
        request.train.eval_batches,
        request.train.seed,
        on_progress=_tokenizing_reporter(on_event, world),
    )
    if world.is_main:
        prepared.run.update_info(data_summary=data.summary)
    config = request.objective_config()
    if hasattr(config, "check_row_length"):
        config.check_row_length(seq_len)
    total_steps = plan_steps(request.train, data.train_rows, world.world_size)
    objective = make_objective(config, prepared.tokenizer.mask_id, prepared.tokenizer.eos_id, total_steps)
    trainer = Trainer(
        prepared.model,
        objective,
        data.train_batch,
        data.train_rows,
        data.val_batches,
        request.train,
        prepared.run,
        device,
        on_event,
        data_summary={**data.summary, "what": _what(request), "objective": option_values(config)},
        world=world,
    )
    if request.run.resume:
        trainer.resume()
    return trainer
