"""What a training command was asked (StageRequest), and the request a run trains with.

A request names its kind and stage, carries one config per option group and one record of the
options the user gave (`given`): a resume compares those with the stored run, an inherited shape
is checked against them. `resolved` turns it into the request that trains: a resumed run's stored
settings, or an SFT of its base run's kind.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import PRESETS, DataConfig, Kind, ModelConfig, Stage, TrainConfig, model_config_from_preset
from ..errors import LladaError, UsageError, named
from ..interchange.imported_runs import external_kind, is_checkpoint_file
from ..objective_configs import OBJECTIVE_CONFIGS, DiffusionSFTConfig, ObjectiveConfig
from ..options import configured, option_names
from ..run_options import FRESH_START, RunOptions, StartOptions, TokenizerOptions
from ..runs.record import a_kind
from ..runs.registry import Registry

# the moving average would need the weights' sharding: not done yet
EMA_WITH_FSDP = f"{named('ema_decay')} does not work with {named('fsdp')} on several processes yet: drop one"


@dataclass(frozen=True)
class StageRequest:
    kind: Kind | None  # None: an SFT, of its base run's kind (resolved)
    stage: Stage
    run: RunOptions
    train: TrainConfig
    data: DataConfig = DataConfig()
    start: StartOptions = StartOptions()
    tokenizer: TokenizerOptions = TokenizerOptions()
    model: ModelConfig = PRESETS["small"]  # the preset with the shape options given
    objective: ObjectiveConfig | None = None  # None: the defaults of this kind and stage
    # the start, shape, training, data and objective options the user gave, by field name (each
    # name is one flag, so unique)
    given: frozenset[str] = frozenset()
    seq_len: int | None = None  # the training row length asked for (None: the model's context)
    parent: str | None = None  # the run it starts from: --init-from (diffusion pretraining), --base (SFT)
    command: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """What a new run is asked for must be able to work: checked before anything is written
        (a resumed run takes its stored settings, which are not asked again)."""
        if self.run.resume:
            return
        if self.objective is not None:
            self.objective.check_applies()
        if self.train.ema_decay and self.train.fsdp and self.run.devices > 1:  # before any data work
            raise UsageError(EMA_WITH_FSDP)
        if "jsonl_field" in self.given:  # a field of pretraining text
            if self.stage != "pretrain":  # conversations and pairs have their own fields
                raise UsageError(
                    f"{named('jsonl_field')}: {self.stage.upper()} reads conversations, not text: drop it"
                )
            self.data.check_field_applies()
        fresh_only = sorted(self.given & set(FRESH_START))
        if self.parent is not None and fresh_only:
            names = ", ".join(named(name) for name in fresh_only)
            raise UsageError(
                f"{names}: a run that starts from '{self.parent}' takes its shape and tokenizer: drop "
                + ("it" if len(fresh_only) == 1 else "them")
            )
        context = self.start.max_position_embeddings
        rows = self.seq_len if self.parent is not None else self.model.seq_len
        if context is not None and rows is not None and context < rows:
            raise UsageError(
                f"{named('max_position_embeddings')} {context} is the model's context, which must hold a "
                f"training row ({named('seq_len')} {rows}): give at least {rows}, or drop it"
            )

    @property
    def resolved_kind(self) -> Kind:
        """The kind it trains: an SFT's is its base run's, known once `resolved`."""
        if self.kind is None:
            raise UsageError(f"sft needs {named('base')} RUN before its kind is known")
        return self.kind

    def objective_config(self) -> ObjectiveConfig:
        """The objective's options: those given, else the defaults of this kind and stage."""
        if self.objective is not None:
            return self.objective
        if self.kind is None:
            raise UsageError(f"sft needs {named('base')} RUN before its objective is known")
        return OBJECTIVE_CONFIGS[(self.kind, self.stage)]()

    def given_of(self, cls: type) -> frozenset[str]:
        """The options of one config class the user gave."""
        return self.given & option_names(cls)


# What a training command takes besides its objective's options; the first three are not compared
# on resume (they say how to run, not what to train).
SETTINGS = (RunOptions, StartOptions, TokenizerOptions, ModelConfig, TrainConfig, DataConfig)


def request_from_options(
    kind: Kind | None,
    stage: Stage,
    options: Mapping[str, Any],
    parent: str | None = None,
    command: Sequence[str] = (),
) -> StageRequest:
    """A request from option values by field name, as the training commands take them (the
    Python API's `train`); an unknown name is refused, with the closest option names."""
    # before the base is known, an SFT or DPO takes the options of either kind (the diffusion ones)
    objective_class = OBJECTIVE_CONFIGS[(kind or "diffusion", stage)]
    names = {cls: option_names(cls) for cls in (*SETTINGS, objective_class)}
    known = set().union(*names.values())
    for name in sorted(set(options) - known):
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(f"{name!r} is not an option of this training command{hint}")

    def part(cls: type) -> dict[str, Any]:
        return {name: value for name, value in options.items() if name in names[cls]}

    start = configured(StartOptions, part(StartOptions))
    shape = part(ModelConfig)
    return StageRequest(
        kind=kind,
        stage=stage,
        run=configured(RunOptions, part(RunOptions)),
        train=configured(TrainConfig, part(TrainConfig)),
        data=configured(DataConfig, part(DataConfig)),
        start=start,
        tokenizer=configured(TokenizerOptions, part(TokenizerOptions)),
        model=model_config_from_preset(start.preset, **shape),
        objective=configured(objective_class, part(objective_class)),
        given=frozenset(options) - names[RunOptions] - names[TokenizerOptions],
        seq_len=shape.get("seq_len"),
        parent=parent,
        command=list(command),
    )


def resolved(registry: Registry, request: StageRequest) -> StageRequest:
    """The request that trains: a resume takes the stored run's settings, an SFT its base's kind."""
    if request.run.resume:
        return _stored(registry, request)
    if request.stage != "pretrain":
        return _of_base_kind(registry, request)
    return request


def _of_base_kind(registry: Registry, request: StageRequest) -> StageRequest:
    """SFT, DPO and GRPO train the same kind as their base run; diffusion-only options on an AR base are
    refused; block SFT follows a base that decodes in blocks (section 6)."""
    if request.parent is None:
        raise UsageError(f"{request.stage} needs {named('base')} RUN (the run to fine-tune)")
    base_block = None  # the block size the base decodes in: block SFT keeps it (section 6)
    if is_checkpoint_file(request.parent):
        kind = external_kind(Path(request.parent).expanduser())
    else:
        base = registry.resolve(request.parent)[0]
        kind, info = base.kind, base.info()
        if info.objective is not None:
            base_block = info.objective.decoding_block(info.total_steps, info.seq_len)
    objective = request.objective or OBJECTIVE_CONFIGS[("diffusion", request.stage)]()
    if kind == "ar":
        ar_config = OBJECTIVE_CONFIGS[("ar", request.stage)]
        ar_options = option_names(ar_config)
        wrong = sorted(request.given_of(type(objective)) - ar_options)
        if wrong:
            names = ", ".join(named(n) for n in wrong)
            raise UsageError(f"{names} applies to diffusion training; run '{request.parent}' is an AR run")
        shared = ar_config(**{n: getattr(objective, n) for n in ar_options})  # beta, for DPO
        return replace(request, kind=kind, objective=shared)
    if isinstance(objective, DiffusionSFTConfig):
        objective = objective.with_form_of(base_block)
    if request.stage == "grpo" and base_block is not None:
        raise UsageError(
            f"run '{request.parent}' decodes block-causally (blocks of {base_block}); GRPO's estimator "
            "scores answers with full attention, so it does not train such runs yet"
        )
    return replace(request, kind=kind, objective=objective)


def _stored(registry: Registry, request: StageRequest) -> StageRequest:
    """A resume request: the stored settings win. `max_steps` may extend the run; any other
    option given that differs from the stored run is refused, with the list of differences."""
    run = registry.existing(request.run.run_name)
    info = run.info()
    stage = info.stage
    if info.train is None or stage == "imported":
        raise UsageError(f"run '{run.name}' was {info.origin}, not trained: there is nothing to resume")
    if info.data is None:  # every trained run records its data (stages._record)
        raise LladaError(f"{run.info_path} records no data settings: run '{run.name}' cannot be resumed")
    command = f"pretrain {info.kind}" if info.stage == "pretrain" else info.stage
    asked = f"pretrain {request.kind}" if request.stage == "pretrain" else request.stage
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
    if "max_steps" in request.given and request.train.max_steps != train.max_steps:
        train = extended(run.name, info.step, train, request.train.max_steps)
    elif info.is_finished:
        raise UsageError(
            f"run '{run.name}' already finished ({info.status} at step {info.step}); to train it further, "
            f"give {named('resume')} with {named('max_steps')} above {info.step}"
        )
    if "logger" in request.given:  # where metrics also go may change on resume
        train = replace(train, logger=request.train.logger)
    comparable = request.given - {"max_steps", "epochs", "logger"} - option_names(StartOptions)
    differences = [
        *_differences(request.train, info.train, comparable),
        *_differences(request.data, info.data, comparable),
        *_differences(request.model, info.model, comparable),
        *_differences(request.objective, info.objective, comparable),
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
        stage=stage,
        model=info.model,
        given=frozenset(),
        seq_len=info.seq_len,
        train=train,
        data=info.data,
        objective=info.objective,
        parent=info.parent,
        start=replace(request.start, preset=info.preset or request.start.preset),
    )


def extended(name: str, step: int, train: TrainConfig, max_steps: int | None) -> TrainConfig:
    """The stored training settings with a new step count (not below the steps already done)."""
    if max_steps is None or max_steps <= step:
        raise UsageError(
            f"run '{name}' is at step {step}: {named('max_steps')} {max_steps} would not train it further"
        )
    return replace(train, max_steps=max_steps, epochs=None)


def _differences(given: object, stored: object, names: frozenset[str]) -> list[str]:
    """'`field` 0.001 (the run has 0.003)' for each given option whose value differs from the run's."""
    if given is None or stored is None:
        return []
    return [
        f"{named(name)} {getattr(given, name)} (the run has {getattr(stored, name)})"
        for name in sorted(names)
        if hasattr(given, name) and hasattr(stored, name) and getattr(given, name) != getattr(stored, name)
    ]
