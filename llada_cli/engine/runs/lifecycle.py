"""A training run's folder through its life: created (Registry.prepare_new) or reopened to resume,
started (run.json written, status running), and ended with a status (interrupted, failed,
completed, early_stopped); or abandoned before it started, leaving nothing behind.

Only the main process writes (runtime/distributed.py), and it owns the run while it trains: the
run's lock (locks.py) refuses a second writer. An overwritten run is moved aside until the new one
has saved its first checkpoint, so a new run that fails its checks, or is killed, gives the old one
back. Nothing here sees what a command asked: that is training/request.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..runtime.distributed import World
from .folder import Run
from .locks import RunLock
from .record import RunInfo
from .registry import Creation, Registry

Handler = Callable[[Any], None]  # a training event handler (training/trainer.py's EventHandler)


def reopen(registry: Registry, name: str) -> RunLock:
    """A run to resume, locked before it is read, and cleaned of what a killed write left."""
    run = registry.existing(name)
    lock = RunLock.acquire(run.path)
    run.clean_leftovers()
    return lock


def abandon(registry: Registry, run: Run, creation: Creation) -> None:
    """A new run that never started leaves nothing behind, and an overwritten one comes back."""
    registry.restore_replaced(run, creation)


def dropping_replaced(
    registry: Registry, creation: Creation | None, on_event: Handler | None
) -> Handler | None:
    """`on_event`, and the overwritten run deleted once the new one has saved its first checkpoint:
    until then a killed new run leaves the old one to `Registry.recover`."""
    if creation is None or creation.replaced is None:
        return on_event

    def handle(event: Any) -> None:
        if event.kind == "checkpoint":
            registry.drop_replaced(creation)
        if on_event is not None:
            on_event(event)

    return handle


def start(run: Run, info: RunInfo) -> None:
    """run.json as training starts: written once before the first step, with status running."""
    run.write_info(info.updated(status="running"))


@contextmanager
def recording_failure(run: Run, world: World) -> Iterator[None]:
    """Around fit(): an interruption or a failure is written into run.json before it propagates
    (the trainer writes the status of a run that ends by itself)."""
    try:
        yield
    except KeyboardInterrupt:
        if world.is_main:
            run.update_info(status="interrupted")
        raise
    except Exception:
        if world.is_main:
            run.update_info(status="failed")
        raise
