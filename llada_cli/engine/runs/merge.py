"""`llada runs merge`: a new run whose weights are the mean of checkpoints of one shape and tokenizer
(RUN@STEP, RUN for its latest, or the K of one run with the lowest validation loss: Nano-LLaDA's
top-k merge; docs/algorithms.md, "Checkpoint merging").

The new run is written as an imported one is: a folder locked while it is written, its tokenizer
and one checkpoint, at the highest step of its sources (its progress reads as theirs: `runs list`
shows 6/6 for a merge of a 6-step run's last checkpoints), and run.json last, so a merge stopped
half way leaves a folder without run.json, which the next run of that name replaces. It is not
trained itself: it records no training settings, so `resume` refuses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..config import ModelConfig
from ..errors import LladaError, UsageError, named
from ..jsonl import read_metrics
from ..model.checkpoint import WEIGHTS_FILE, read_tensors, read_weights_config, save_weights
from .folder import Run
from .record import RunInfo, a_kind
from .registry import Registry


@dataclass(frozen=True)
class Source:
    """One checkpoint to average: a run and one of its steps."""

    run: Run
    step: int

    @property
    def label(self) -> str:
        return f"{self.run.name}@{self.step}"

    @property
    def weights(self) -> Path:
        return self.run.checkpoint_dir(self.step) / WEIGHTS_FILE


def pick_sources(registry: Registry, specs: list[str], top_k_val: int | None = None) -> list[Source]:
    """The checkpoints to average: each RUN@STEP (RUN: its latest), or with `top_k_val` the K of one
    run with the lowest validation loss."""
    if top_k_val is not None:
        if top_k_val < 1:
            raise UsageError(f"{named('top_k_val')} must be at least 1, got {top_k_val}")
        if len(specs) != 1:
            raise UsageError(
                f"{named('top_k_val')} picks the checkpoints of one run: give one run, not {len(specs)}"
            )
        run, step = registry.resolve(specs[0])
        if step is not None:
            raise UsageError(
                f"{named('top_k_val')} picks the steps of run '{run.name}': give it without @{step}"
            )
        return [Source(run, step) for step in lowest_validation_steps(run, top_k_val)]
    if len(specs) < 2:
        raise UsageError(
            "a merge needs two or more checkpoints (RUN@STEP, or RUN for its latest), "
            f"or one run with {named('top_k_val')}"
        )
    sources: list[Source] = []
    for spec in specs:
        run, step = registry.resolve(spec)
        source = Source(run, run.resolve_step(step))
        if any(s.run.path.resolve() == run.path.resolve() and s.step == source.step for s in sources):
            raise UsageError(f"checkpoint {source.label} is given twice: each one counts once")
        sources.append(source)
    return sources


def lowest_validation_steps(run: Run, k: int) -> list[int]:
    """The `k` checkpoint steps of `run` (still on disk) whose validation loss in metrics.jsonl is
    lowest, in step order; of equal losses the earlier step, as Nano-LLaDA keeps its top k."""
    losses: dict[int, float] = {}
    for record in read_metrics(run.metrics_path, f"{run.name}/metrics.jsonl"):
        step, loss = record.get("step"), record.get("val_loss")
        if isinstance(step, int) and isinstance(loss, (int, float)) and math.isfinite(loss):
            losses[step] = float(loss)  # a resumed run's later record of a step wins
    scored = sorted((losses[step], step) for step in run.checkpoint_steps() if step in losses)
    if len(scored) < k:
        steps = ", ".join(str(step) for step in sorted(step for _, step in scored))
        held = f"{len(scored)} (step{'s' if len(scored) > 1 else ''} {steps})" if scored else "none"
        raise UsageError(
            f"{named('top_k_val')} {k} needs {k} checkpoints of run '{run.name}' with a validation loss "
            f"in its metrics.jsonl; it has {held}"
        )
    return sorted(step for _, step in scored[:k])


def merge(
    registry: Registry,
    sources: list[Source],
    name: str,
    overwrite: bool = False,
    command: list[str] | None = None,
) -> Run:
    """A new run `name` holding the mean of the sources' weights, taken in float32 and stored in the
    first source's dtype; sources of different kinds, stages, shapes or tokenizers are refused."""
    target = (registry.runs_dir / name).resolve()  # a source given as a (relative) folder too
    if any(s.run.path.resolve() == target for s in sources):
        raise UsageError(
            f"run '{name}' is a source of the merge: give the merged run another {named('name')}"
        )
    registry.check_free(name, overwrite)  # before reading any weights
    infos = [source.run.info() for source in sources]
    config, tokenizer = _check_alike(sources, infos)
    weights = mean_weights([source.weights for source in sources])
    first = infos[0]
    # what sampling defaults to (a block-diffusion run's block size) comes from these: kept when the
    # sources agree on them, as the checkpoints of one run do
    trained = [(info.objective, info.seq_len, info.total_steps) for info in infos]
    same = all(each == trained[0] for each in trained)
    objective, seq_len, total_steps = trained[0] if same else (None, None, None)
    step = max(source.step for source in sources)
    info = RunInfo(
        name=name,
        kind=first.kind,
        stage=first.stage,
        model=config,
        parameters=first.parameters,
        objective=objective,
        seq_len=seq_len,
        total_steps=total_steps,
        command=command or [],
        status="completed",
        step=step,
        merged_from=[{"run": source.run.name, "step": source.step} for source in sources],
    )
    with registry.writing_new(name, overwrite) as run:
        with atomic_path(run.tokenizer_path) as tmp:
            tmp.write_bytes(tokenizer)
        run.commit_checkpoint(step, lambda folder: save_weights(config, weights, folder / WEIGHTS_FILE))
        run.write_info(info)
    return run


def mean_weights(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The mean of each tensor over the weights files, summed in float32 one file at a time and
    stored in the first file's dtype."""
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for path in paths:
        tensors = read_tensors(path)
        if total and {k: t.shape for k, t in tensors.items()} != {k: t.shape for k, t in total.items()}:
            raise LladaError(f"{path} holds other tensors than {paths[0]}, for the same model: it is damaged")
        for key, tensor in tensors.items():
            if key in total:
                total[key] += tensor.float()
            else:
                total[key], dtypes[key] = tensor.float().clone(), tensor.dtype
    return {key: (tensor / len(paths)).to(dtypes[key]) for key, tensor in total.items()}


def _check_alike(sources: list[Source], infos: list[RunInfo]) -> tuple[ModelConfig, bytes]:
    """The one model config and tokenizer.json of the sources; a kind, stage, shape or tokenizer
    that differs is refused."""
    first = sources[0]
    config, tokenizer = read_weights_config(first.weights), _tokenizer_bytes(first)
    for source, info in zip(sources[1:], infos[1:], strict=True):
        start = f"cannot merge {first.label} with {source.label}"
        if info.kind != infos[0].kind:
            raise UsageError(f"{start}: {a_kind(infos[0].kind)} run and {a_kind(info.kind)} run")
        if info.stage != infos[0].stage:
            raise UsageError(f"{start}: their stages differ ({infos[0].stage} vs {info.stage})")
        other = read_weights_config(source.weights)
        if other != config:
            differ = [
                f"{f.name} {getattr(config, f.name)} vs {getattr(other, f.name)}"
                for f in fields(ModelConfig)
                if getattr(config, f.name) != getattr(other, f.name)
            ]
            raise UsageError(f"{start}: their models differ ({'; '.join(differ)})")
        if _tokenizer_bytes(source) != tokenizer:
            raise UsageError(f"{start}: their tokenizers differ (tokenizer.json)")
    return config, tokenizer


def _tokenizer_bytes(source: Source) -> bytes:
    try:
        return source.run.tokenizer_path.read_bytes()
    except OSError as err:
        raise LladaError(
            f"cannot read the tokenizer of run '{source.run.name}': {err.strerror or err}"
        ) from None
