"""Where training metrics go besides metrics.jsonl: TensorBoard or Weights & Biases.

metrics.jsonl is always written; `--logger tensorboard|wandb` sends the same records to that
tool too, from the main process only. Both are optional extras, imported only when asked for,
and checked before a run starts so a missing package costs nothing but one line.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import UsageError, named

if TYPE_CHECKING:
    from ..runs.folder import Run

PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}  # logger: the module it needs


class MetricsLogger(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def check_logger(kind: str) -> None:
    """Refuse a logger whose package is not installed, saying what to install."""
    package = PACKAGES.get(kind)
    if package is not None and not _installed(package):
        raise UsageError(
            f"{named('logger')} {kind} needs the {package} package: pip install 'llada-cli[{package}]'"
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules counts as absent
        return False


def open_logger(kind: str, run: Run, resumed_at: int, settings: dict[str, Any]) -> MetricsLogger | None:
    """The logger for a run starting (or resuming) at step `resumed_at`; None for jsonl only."""
    if kind == "tensorboard":
        return TensorBoardLogger(run, resumed_at)
    if kind == "wandb":
        return WandbLogger(run, settings)
    return None


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in record.items()
        if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


class TensorBoardLogger:
    """Scalars under RUN/tensorboard; a resumed run first drops events past its checkpoint."""

    def __init__(self, run: Run, resumed_at: int) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        # metrics.jsonl keeps the steps up to the checkpoint, so the events from the next step on
        # (written by the process that was stopped) give way to the resumed run's
        self.writer = SummaryWriter(str(run.path / "tensorboard"), purge_step=resumed_at + 1)

    def log(self, record: dict[str, Any]) -> None:
        for key, value in _scalars(record).items():
            self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """One W&B run per llada run (its id kept in the run folder, so a resume continues it);
    offline unless WANDB_MODE says otherwise, so it works without a network or an account."""

    def __init__(self, run: Run, settings: dict[str, Any]) -> None:
        import wandb

        id_file = run.path / "wandb-id.txt"
        if not id_file.is_file():
            id_file.write_text(uuid.uuid4().hex[:12], encoding="utf-8")
        self.wandb = wandb
        self.session = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "llada"),
            name=run.name,
            id=id_file.read_text(encoding="utf-8").strip(),
            resume="allow",
            dir=str(run.path),
            mode=os.environ.get("WANDB_MODE", "offline"),
            config=settings,
        )

    def log(self, record: dict[str, Any]) -> None:
        self.session.log(_scalars(record), step=record["step"])

    def close(self) -> None:
        self.session.finish()
