"""RunInfo: the one schema of a run's run.json, with its one writer and one reader.

Training, import, evaluation, `runs` and resume all go through it. The reader also takes the
layout of earlier releases (format 1: the training settings nested under "request", the
objective fields `normalised_loss` and `eps`), so their runs keep loading, sampling and resuming.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from ..atomic import write_json_atomic
from ..config import DataConfig, Kind, ModelConfig, Stage, TrainConfig
from ..errors import LladaError, UsageError
from ..objective_configs import OBJECTIVE_CONFIGS
from ..typed import mismatches, shown

FORMAT = 3
# objective fields renamed since format 1: old name -> new name
RENAMED_OBJECTIVE_FIELDS = {
    "normalised_loss": "normalized_loss",
    "eps": "iid_mask_eps",
    "block_sizes_up": "wsd_block_sizes_up",
    "block_sizes_down": "wsd_block_sizes_down",
}
RunStage = Literal[Stage, "imported"]
Status = Literal["created", "running", "interrupted", "failed", "completed", "early_stopped"]
FINISHED: tuple[Status, ...] = ("completed", "early_stopped")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def software_versions() -> dict[str, str]:
    """Recorded in run.json so a result can be traced to the code that made it."""
    import platform

    import torch

    try:
        llada = version("llada-cli")
    except PackageNotFoundError:
        llada = "dev"
    return {"python": platform.python_version(), "torch": torch.__version__, "llada": llada}


def a_kind(kind: str) -> str:
    """'an AR' or 'a diffusion', for messages about a run of that kind."""
    return "an AR" if kind == "ar" else f"a {kind}"


@dataclass(frozen=True)
class RunInfo:
    name: str
    kind: Kind
    stage: RunStage
    model: ModelConfig
    parameters: int
    parent: str | None = None  # name@step of the run it continued, or an external checkpoint's path
    preset: str | None = None  # the size preset of a run trained from scratch
    train: TrainConfig | None = None  # None for an imported run
    data: DataConfig | None = None
    objective: Any = None  # the config class OBJECTIVE_CONFIGS gives for (kind, stage)
    seq_len: int | None = None  # the training row length
    command: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=software_versions)
    created: str = field(default_factory=now)
    status: Status = "created"  # an imported run stays created; a training run starts as running
    total_steps: int | None = None
    step: int = 0
    tokens: int = 0
    best: dict[str, float] | None = None  # {"step", "val_loss"}
    device: str | None = None
    dtype: str | None = None
    finished: str | None = None
    train_seconds: float | None = None  # training time to the last checkpoint or the end (None: older runs)
    data_summary: dict[str, int] = field(default_factory=dict)
    source: str | None = None  # an imported run: the checkpoint file
    import_report: dict[str, Any] | None = None
    merged_from: list[dict[str, Any]] | None = None  # a merged run: its checkpoints, [{"run", "step"}]

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def origin(self) -> str:
        """What made the weights, for messages: 'merged', or the stage (pretrain, sft, imported)."""
        return "merged" if self.merged_from else self.stage

    def updated(self, **changes: Any) -> RunInfo:
        return replace(self, **changes)

    # -- the writer and the reader ---------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": FORMAT}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = asdict(value) if hasattr(value, "__dataclass_fields__") else value
        return data

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> RunInfo:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"{path.parent} is not a llada run (no run.json)") from None
        except UnicodeDecodeError:
            raise LladaError(f"{path} is corrupt (not UTF-8 text); fix or remove it") from None
        except json.JSONDecodeError as err:
            raise LladaError(f"{path} is corrupt ({err.msg}); fix or remove it") from None
        except (ValueError, RecursionError):  # an integer of over 4,300 digits, a list nested too deep
            raise LladaError(f"{path} is corrupt (a number or nesting too large); fix or remove it") from None
        if not isinstance(data, dict):
            raise LladaError(f"{path} does not describe a run (not a JSON object); fix or remove it")
        version = data.get("format", 1)
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT:
            raise LladaError(
                f"{path} was written by a newer llada (format {version}; this release reads formats 1 to "
                f"{FORMAT}): upgrade llada to use this run"
            )
        try:
            return cls.from_json(data)
        except Damaged as err:
            raise LladaError(f"{path}: {err}; fix or remove it") from None
        except (KeyError, TypeError, ValueError) as err:
            raise LladaError(f"{path} does not describe a run ({err}); fix or remove it") from None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunInfo:
        """A run from its run.json, any format this release reads; a field of the wrong type is Damaged."""
        version = data.get("format", 1)
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT:
            raise Damaged(f"field 'format' must be an integer from 1 to {FORMAT}, got {shown(version)}")
        data = _from_format_1(data) if version == 1 else dict(data)
        _check_record(data)
        if (
            version < 3
            and data.get("objective")
            and (data["kind"], data["stage"]) == ("diffusion", "pretrain")
        ):
            data["objective"] = _block_curriculum_of_format_2(data["objective"])
        data.pop("format", None)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["model"] = ModelConfig.from_dict(data["model"])
        values["train"] = _config(TrainConfig, data.get("train"))
        values["data"] = _config(DataConfig, data.get("data"))
        objective_class = OBJECTIVE_CONFIGS.get((data["kind"], data["stage"]))
        values["objective"] = _config(objective_class, data.get("objective")) if objective_class else None
        return cls(**values)


class Damaged(ValueError):
    """A run.json field that is missing or of the wrong type (hand-edited or written by other code)."""


# run.json's sections: the config class each holds (the objective's depends on kind and stage)
SECTIONS: dict[str, type | None] = {
    "model": ModelConfig,
    "train": TrainConfig,
    "data": DataConfig,
    "objective": None,
}


def _check_record(data: dict[str, Any]) -> None:
    """Every field of the record, and of each config section, of the type RunInfo declares."""
    for required in ("name", "kind", "stage", "model"):
        if required not in data:
            raise Damaged(f"field '{required}' is missing")
    plain = {name: value for name, value in data.items() if name not in SECTIONS}
    for name, what, value in mismatches(RunInfo, plain):
        raise Damaged(f"field '{name}' must be {what}, got {shown(value)}")
    for name in ("created", "finished"):
        if isinstance(data.get(name), str) and not _is_time(data[name]):
            raise Damaged(
                f"field '{name}' must be a date and time like 2026-01-31T12:00:00, got {shown(data[name])}"
            )
    for section, cls in SECTIONS.items():
        stored = data.get(section)
        if stored is None and section != "model":
            continue
        if not isinstance(stored, dict):
            raise Damaged(f"field '{section}' must be an object, got {shown(stored)}")
        cls = cls or OBJECTIVE_CONFIGS.get((data["kind"], data["stage"]))
        for name, what, value in mismatches(cls, stored) if cls else ():
            raise Damaged(f"field '{section}.{name}' must be {what}, got {shown(value)}")


def _is_time(stamp: str) -> bool:
    try:
        datetime.fromisoformat(stamp)
    except ValueError:
        return False
    return True


def _config(cls: type, stored: dict[str, Any] | None) -> Any:
    """A config from its stored fields: list values back to tuples, fields it no longer has dropped."""
    if stored is None:
        return None
    known = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in known})


def _from_format_1(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 kept the training settings under "request" and used older objective field names."""
    data = dict(data)
    request = data.pop("request", None) or {}
    if "train" in request:
        data["train"] = request["train"]
        data["data"] = {k: request[k] for k in ("data", "jsonl_field", "val_fraction") if k in request}
        data["seq_len"] = request.get("seq_len")
        data["objective"] = request.get("objective") or {}
    return data


def _block_curriculum_of_format_2(objective: dict[str, Any]) -> dict[str, Any]:
    """Up to format 2, `mask_schedule: wsd` was the block-size curriculum alone, with its phases in
    wsd_warmup_ratio / wsd_stable_ratio; those names now belong to the mask-ratio schedule."""
    old = {RENAMED_OBJECTIVE_FIELDS.get(k, k): v for k, v in objective.items()}
    warmup, stable = old.pop("wsd_warmup_ratio", 0.3), old.pop("wsd_stable_ratio", 0.5)
    if old.get("mask_schedule") == "wsd":
        old.update(
            mask_schedule="iid_t",
            use_block_curriculum=True,
            wsd_phase_ratios=[warmup, stable, max(0.0, 1.0 - warmup - stable)],
        )
    return old
