"""One run folder: its files, and checkpoints written so that a killed process never leaves half
of one.

RUN/
  run.json  tokenizer.json  metrics.jsonl
  checkpoints/step-0000500/{model.safetensors, trainer.pt}
  latest    (text file naming the newest complete checkpoint folder)
  evals/    (lm-eval results, one JSON file an evaluation)
  .lock     (locked by the process that trains the run: runs/locks.py)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import folder_mode, write_text_atomic
from ..config import Kind
from ..errors import LladaError, UsageError
from .record import RunInfo

CHECKPOINT_DIR = re.compile(r"^step-(\d+)\Z")


@dataclass(frozen=True)
class Run:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    @property
    def tokenizer_path(self) -> Path:
        return self.path / "tokenizer.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def evals_dir(self) -> Path:
        """lm-eval results, one JSON file an evaluation (`llada eval RUN --tasks`)."""
        return self.path / "evals"

    def eval_results(self) -> list[dict[str, Any]]:
        """The saved lm-eval results, oldest first; a file that does not read is skipped."""
        results = []
        for path in sorted(self.evals_dir.glob("*.json")) if self.evals_dir.is_dir() else []:
            try:
                results.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return results

    def info(self) -> RunInfo:
        return RunInfo.load(self.info_path)

    def write_info(self, info: RunInfo) -> None:
        info.save(self.info_path)

    def update_info(self, **changes: Any) -> RunInfo:
        info = self.info().updated(**changes)
        self.write_info(info)
        return info

    @property
    def kind(self) -> Kind:
        return self.info().kind

    def checkpoint_steps(self) -> list[int]:
        if not self.checkpoints_dir.is_dir():
            return []
        steps = (CHECKPOINT_DIR.match(p.name) for p in self.checkpoints_dir.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in steps if m)

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step:07d}"

    def latest_step(self) -> int | None:
        pointer = self.path / "latest"
        if pointer.is_file():  # a damaged pointer (not text, not a step) is ignored: the folders say
            match = CHECKPOINT_DIR.match(pointer.read_bytes().decode("utf-8", "replace").strip())
            if match and self.checkpoint_dir(int(match.group(1))).is_dir():
                return int(match.group(1))
        steps = self.checkpoint_steps()
        return steps[-1] if steps else None

    def resolve_step(self, step: int | None) -> int:
        """The checkpoint to load: the given step (must exist) or the latest."""
        steps = self.checkpoint_steps()
        if not steps:
            raise UsageError(f"run '{self.name}' has no checkpoint yet")
        if step is None:
            latest = self.latest_step()  # None only without checkpoints
            return steps[-1] if latest is None else latest
        if step not in steps:
            shown = ", ".join(str(s) for s in steps[-8:])
            raise UsageError(f"run '{self.name}' has no checkpoint at step {step}; it has: {shown}")
        return step

    def commit_checkpoint(self, step: int, write_files: Any) -> Path:
        """Write a checkpoint folder atomically: `write_files(tmp_dir)` fills a temp folder that is
        renamed into place, then the `latest` pointer moves. A killed run never leaves half a checkpoint."""
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        final = self.checkpoint_dir(step)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.checkpoints_dir))
        tmp.chmod(folder_mode())  # a checkpoint folder is as private as any other folder, no more
        try:
            try:
                write_files(tmp)
            except OSError as err:  # a full disk, typically: the earlier checkpoints are untouched
                kept = self.latest_step()
                since = f"step {kept} is intact" if kept is not None else "no earlier checkpoint exists"
                raise LladaError(
                    f"cannot save the checkpoint of step {step}: {err.strerror or err}; {since}"
                ) from None
            if final.exists():  # re-saving a step: move the old one aside first, drop it after
                old = final.with_name(final.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old)
            else:
                os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        write_text_atomic(self.path / "latest", final.name + "\n")
        return final

    def clean_leftovers(self) -> None:
        """What a killed write left: a checkpoint's temp folder and an atomic write's temp file go;
        a re-saved checkpoint moved aside (`step-N.old`) whose new copy never landed goes back."""
        for tmp in self.path.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        if not self.checkpoints_dir.is_dir():
            return
        for path in self.checkpoints_dir.iterdir():
            final = path.with_name(path.name.removesuffix(".old"))
            if path.name.startswith(".step-"):
                shutil.rmtree(path, ignore_errors=True)
            elif path.name.endswith(".old") and CHECKPOINT_DIR.match(final.name):
                if final.exists():
                    shutil.rmtree(path)
                else:
                    os.replace(path, final)

    def prune_checkpoints(self, keep_last: int, protect: set[int]) -> None:
        """Drop all but the newest `keep_last` checkpoints (0 keeps all); `protect` (the best) stays."""
        if keep_last <= 0:
            return
        steps = self.checkpoint_steps()
        for step in steps[:-keep_last]:
            if step not in protect:
                shutil.rmtree(self.checkpoint_dir(step))
