"""The training stages a user runs: pretrain AR, pretrain diffusion (optionally from an AR run), SFT.

Each stage turns a StageRequest into a run folder, a tokenizer, a model, data and an
objective, then hands them to the Trainer. A resumed run rebuilds the same pieces from its
run.json, so only the checkpoint decides where it continues.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch

from .checkpoint import load_run
from .config import ModelConfig
from .curriculum import validate_block_sizes
from .data.packing import split_rows
from .data.sft import SFTRows, build_sft_rows
from .data.sources import load_pretrain_texts, load_sft_conversations
from .datasets import pretrain_rows
from .errors import UsageError
from .importing import EXTERNAL_SUFFIXES, load_external_model
from .model import Transformer, grow_vocab
from .objectives import (
    ARPretrainObjective,
    ARSFTObjective,
    DiffusionPretrainObjective,
    DiffusionSFTObjective,
    PretrainBatch,
    sft_batch,
)
from .registry import Registry, Run, software_versions, write_json_atomic
from .tokenizer import Tokenizer
from .trainer import EventHandler, TrainConfig, Trainer, check_train_config, resolve_device

Kind = Literal["ar", "diffusion"]
Stage = Literal["pretrain", "sft"]
SHAPE_FIELDS = (  # what a continued run inherits from its parent; a different flag is an error
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_kv_heads",
    "intermediate_size",
    "rope_theta",
    "qk_norm",
    "tie_embeddings",
)


@dataclass
class StageRequest:
    kind: Kind
    stage: Stage
    run_name: str
    model: ModelConfig  # the shape for a fresh model (ignored where a parent run gives it)
    shape_overrides: dict[str, Any]  # size flags the user typed, checked against a parent run
    train: TrainConfig
    data: str = "builtin"
    jsonl_field: str = "text"
    val_fraction: float = 0.05
    parent: str | None = None  # --init-from (diffusion pretrain) or --base (sft)
    tokenizer_path: Path | None = None
    vocab_size: int = 6400
    objective: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    resume: bool = False
    device: str = "auto"
    command: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    """Everything a stage needs before training starts."""

    run: Run
    model: Transformer
    tokenizer: Tokenizer
    replaced: Path | None  # an overwritten run, moved aside until this one starts


def run_stage(registry: Registry, request: StageRequest, on_event: EventHandler | None = None) -> Run:
    device = resolve_device(request.device)
    check_train_config(request.train)
    if request.resume:
        request = _request_from_run(registry, request)
    elif request.stage == "sft":
        request = replace(request, kind=_base_kind(registry, request.parent))
    torch.manual_seed(request.train.seed)
    prepared = _prepare(registry, request)
    try:
        trainer = _trainer(registry, request, prepared, device, on_event)
    except BaseException:
        if not request.resume:  # a run that never started leaves nothing behind; --overwrite undone
            registry.restore_replaced(prepared.run, prepared.replaced)
        raise
    registry.drop_replaced(prepared.replaced)
    prepared.run.update_info(
        status="running", total_steps=trainer.schedule.total, device=str(device), dtype=trainer.config.dtype
    )
    try:
        trainer.fit()
    except KeyboardInterrupt:
        prepared.run.update_info(status="interrupted")
        raise
    except Exception:
        prepared.run.update_info(status="failed")
        raise
    return prepared.run


def _trainer(
    registry: Registry,
    request: StageRequest,
    prepared: Prepared,
    device: torch.device,
    on_event: EventHandler | None,
) -> Trainer:
    data = _datasets(registry, request, prepared)
    objective = _objective(request, prepared.tokenizer, data.summary["seq_len"])
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
        data_summary=data.summary,
    )
    if request.resume:
        trainer.resume()
    return trainer


# ---------------------------------------------------------------------------
# run folder, tokenizer and model


def _request_from_run(registry: Registry, request: StageRequest) -> StageRequest:
    """A --resume request: the stored configuration wins over today's flags."""
    run = registry.existing(request.run_name)
    info = run.info()
    if info.get("status") in ("completed", "early_stopped"):
        raise UsageError(f"run '{run.name}' already finished ({info['status']}); nothing to resume")
    stored = info["request"]
    return replace(
        request,
        kind=info["kind"],
        stage=info["stage"],
        model=ModelConfig.from_dict(info["model"]),
        shape_overrides={"seq_len": stored["seq_len"]},
        train=TrainConfig(**stored["train"]),
        data=stored["data"],
        jsonl_field=stored["jsonl_field"],
        val_fraction=stored["val_fraction"],
        parent=info.get("parent"),
        objective=stored["objective"],
    )


def _base_kind(registry: Registry, base: str | None) -> Kind:
    """SFT trains the same track as its base run."""
    if base is None:
        raise UsageError("sft needs --base RUN (the pretrained run to fine-tune)")
    return registry.resolve(base)[0].kind


def _prepare(registry: Registry, request: StageRequest) -> Prepared:
    if request.resume:
        run = registry.existing(request.run_name)
        tokenizer = Tokenizer.load(run.tokenizer_path)
        if run.latest_step() is not None:  # the checkpoint holds the weights; the parent is not needed
            return Prepared(run, Transformer(request.model), tokenizer, None)
        model = _rebuilt(_initial_model(registry, request, tokenizer)[0], request.model)
        return Prepared(run, model, tokenizer, None)
    model, tokenizer, parent = _initial_model(registry, request, None)
    run, replaced = registry.prepare_new(request.run_name, request.overwrite)
    tokenizer.save(run.tokenizer_path)
    write_json_atomic(run.info_path, _run_info(request, model, parent))
    return Prepared(run, model, tokenizer, replaced)


def _initial_model(
    registry: Registry, request: StageRequest, tokenizer: Tokenizer | None
) -> tuple[Transformer, Tokenizer, str | None]:
    """The model training starts from: fresh, an AR run continued as diffusion, or an SFT base."""
    if request.parent is None:
        tokenizer = tokenizer or _fresh_tokenizer(registry, request)
        config = replace(request.model, vocab_size=tokenizer.vocab_size, causal=request.kind == "ar")
        return Transformer(config.validate()), tokenizer, None
    parent = _load_parent(registry, request)
    _check_shape(parent.model.config, request.shape_overrides, parent.label)
    model, parent_tokenizer = parent.model, parent.tokenizer
    if request.stage == "pretrain":  # diffusion continued from an AR run (docs/algorithms.md section 11)
        if parent.kind != "ar":
            raise UsageError(f"--init-from {parent.label}: that run is {parent.kind}, not an AR run")
        parent_tokenizer = parent_tokenizer.with_mask_token()
        if parent_tokenizer.vocab_size > model.config.vocab_size:
            model = grow_vocab(model, parent_tokenizer.vocab_size)
        model = _rebuilt(model, replace(model.config, causal=False))
    if request.shape_overrides.get("rope_scaling"):  # --inference-rope-scaling on a continued model
        model = _rebuilt(model, replace(model.config, rope_scaling=request.shape_overrides["rope_scaling"]))
    if (request.shape_overrides.get("seq_len") or 0) > model.config.seq_len:  # e.g. SFT at 512 after 256
        model = _rebuilt(model, replace(model.config, seq_len=request.shape_overrides["seq_len"]))
    model.train()
    return model, tokenizer or parent_tokenizer, parent.label


@dataclass
class Parent:
    label: str  # name@step of a run, or the path of an external checkpoint
    kind: Kind
    model: Transformer
    tokenizer: Tokenizer


def _load_parent(registry: Registry, request: StageRequest) -> Parent:
    """A registry run, or an external MiniMind / Nano-LLaDA state dict given by its path (AR weights)."""
    path = Path(request.parent).expanduser()
    if path.suffix in EXTERNAL_SUFFIXES and path.is_file():
        if request.tokenizer_path is None:
            raise UsageError(f"--init-from {path}: an external checkpoint needs --tokenizer tokenizer.json")
        model, _ = load_external_model(path, causal=True)
        return Parent(str(path), "ar", model, Tokenizer.load(request.tokenizer_path))
    if request.tokenizer_path is not None:
        raise UsageError(f"--tokenizer: run '{request.parent}' brings its own tokenizer; drop the flag")
    loaded = load_run(*registry.resolve(request.parent))
    return Parent(f"{loaded.run.name}@{loaded.step}", loaded.kind, loaded.model, loaded.tokenizer)


def _rebuilt(model: Transformer, config: ModelConfig) -> Transformer:
    """The same weights under another config of the same shape (attention rule, RoPE scaling)."""
    rebuilt = Transformer(config)
    rebuilt.load_state_dict(model.state_dict())
    return rebuilt


def _check_shape(parent: ModelConfig, overrides: dict[str, Any], parent_name: str) -> None:
    for name in SHAPE_FIELDS:
        wanted = overrides.get(name)
        have = getattr(parent, name)
        if wanted is not None and wanted != have:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} {wanted} does not match run '{parent_name}' ({name} = {have}); drop it")


def _fresh_tokenizer(registry: Registry, request: StageRequest) -> Tokenizer:
    if request.tokenizer_path is not None:
        tokenizer = Tokenizer.load(request.tokenizer_path)
    else:
        texts = load_pretrain_texts(request.data, registry.data_dir, request.jsonl_field)
        tokenizer = Tokenizer.train(texts, request.vocab_size)
    return tokenizer.with_mask_token() if request.kind == "diffusion" else tokenizer


def _run_info(request: StageRequest, model: Transformer, parent: str | None) -> dict[str, Any]:
    stored = {
        "seq_len": _train_seq_len(request, model),
        "train": request.train.to_dict(),
        "data": request.data,
        "jsonl_field": request.jsonl_field,
        "val_fraction": request.val_fraction,
        "objective": request.objective,
    }
    return {
        "name": request.run_name,
        "kind": request.kind,
        "stage": request.stage,
        "parent": parent,
        "model": model.config.to_dict(),
        "parameters": model.num_parameters,
        "request": stored,
        "command": request.command,
        "versions": software_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "status": "created",
    }


# ---------------------------------------------------------------------------
# data and objective


def _train_seq_len(request: StageRequest, model: Transformer) -> int:
    """Row length: --seq-len when given (also shorter than a parent's context), else the model's."""
    return request.shape_overrides.get("seq_len") or model.config.seq_len


@dataclass
class StageData:
    train_batch: Callable[[torch.Tensor], Any]  # row indices -> a batch
    train_rows: int
    val_batches: list[Any]
    summary: dict[str, int]  # shown to the user and kept in run.json


def _datasets(registry: Registry, request: StageRequest, prepared: Prepared) -> StageData:
    """Train/validation rows: packed text for pretraining, templated conversations for SFT."""
    seq_len = _train_seq_len(request, prepared.model)
    if request.stage == "pretrain":
        rows = pretrain_rows(
            registry,
            request.data,
            request.jsonl_field,
            prepared.tokenizer,
            prepared.run.tokenizer_path,
            seq_len,
        )
        tensors, make, summary = (rows,), PretrainBatch, {}
    else:
        sft = _sft_rows(registry, request, prepared.tokenizer, seq_len)
        tensors, make = (sft.input_ids, sft.response_mask, sft.pad_mask), sft_batch
        summary = {"truncated": sft.truncated, "skipped": sft.skipped}
    train_idx, val_idx = (
        part[:, 0]
        for part in split_rows(
            torch.arange(len(tensors[0]))[:, None], request.val_fraction, request.train.seed
        )
    )
    train = [t[train_idx] for t in tensors]
    val = [t[val_idx] for t in tensors]
    size = request.train.batch_size
    val_batches = [make(*(t[i : i + size] for t in val)) for i in range(0, len(val[0]), size)]
    summary = {"rows": len(train[0]), "val_rows": len(val[0]), "seq_len": seq_len, **summary}
    prepared.run.update_info(data_summary=summary)
    return StageData(
        lambda idx: make(*(t[idx] for t in train)),
        len(train[0]),
        val_batches[: request.train.eval_batches],
        summary,
    )


def _sft_rows(registry: Registry, request: StageRequest, tokenizer: Tokenizer, seq_len: int) -> SFTRows:
    conversations = load_sft_conversations(request.data, registry.data_dir)
    # Diffusion trains one assistant turn per row: later turns must not see an earlier answer masked.
    return build_sft_rows(conversations, tokenizer, seq_len, one_turn_per_row=request.kind == "diffusion")


def _objective(request: StageRequest, tokenizer: Tokenizer, seq_len: int):
    if request.stage == "pretrain" and request.kind == "ar":
        cls, ids = ARPretrainObjective, {"eos_id": tokenizer.eos_id}
    elif request.stage == "pretrain":
        cls, ids = DiffusionPretrainObjective, {"mask_id": tokenizer.mask_id, "eos_id": tokenizer.eos_id}
    elif request.kind == "ar":
        cls, ids = ARSFTObjective, {}
    else:
        cls, ids = DiffusionSFTObjective, {"mask_id": tokenizer.mask_id}
    accepted = {f.name for f in fields(cls)}
    for name in request.objective:
        if name not in accepted:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} applies to diffusion training; run '{request.parent}' is an AR run")
    objective = cls(**ids, **request.objective)
    if isinstance(objective, DiffusionPretrainObjective) and objective.mask_schedule == "wsd":
        for flag, sizes in (
            ("--block-sizes-up", objective.block_sizes_up),
            ("--block-sizes-down", objective.block_sizes_down),
        ):
            if sizes:
                validate_block_sizes(sizes, seq_len, flag)
    return objective
