"""Model weights (safetensors, config in the metadata) and trainer state (torch.load weights_only)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, BinaryIO, cast

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path
from ..config import ModelConfig
from ..errors import LladaError
from .transformer import Transformer

WEIGHTS_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"  # the moving average of the weights (--ema-decay), in the same format
TRAINER_FILE = "trainer.pt"


def save_weights(config: ModelConfig, state: dict[str, torch.Tensor], path: Path) -> None:
    """One safetensors file with the model config in its metadata; a tied head is stored once."""
    metadata = {"config": json.dumps(config.to_dict()), "format": "llada-v1"}
    tensors = {name: tensor.contiguous() for name, tensor in state.items()}
    if config.tie_embeddings:
        tensors.pop("lm_head.weight", None)  # load_weights restores it from the embedding
    write_safetensors(tensors, path, metadata)


def write_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """An atomic safetensors file; a failed write (a full disk) is the OSError safetensors wraps."""
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as err:
            code = re.search(r"os error (\d+)", str(err))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from None


def read_weights_config(path: Path) -> ModelConfig:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise LladaError(f"cannot read weights {path}: {err}") from None
    if "config" not in metadata:
        raise LladaError(f"{path} has no llada model config in its metadata")
    return ModelConfig.from_dict(json.loads(metadata["config"]))


def load_weights(path: Path, config: ModelConfig | None = None, device: str = "cpu") -> Transformer:
    """Build the model described by the file (or `config`, e.g. with causal switched) and load it."""
    config = config or read_weights_config(path)
    model = Transformer(config)
    state = read_tensors(path)
    if config.tie_embeddings:  # one matrix: a file may hold it under either name
        head, embedding = "lm_head.weight", "embed_tokens.weight"
        for name, other in ((head, embedding), (embedding, head)):
            if name not in state and other in state:
                state[name] = state[other]
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise LladaError(f"checkpoint {path} does not match the model: {first}") from None
    return model.to(device)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file as stored (dtype included), on the CPU."""
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise _damaged(path, str(err)) from None


def save_trainer_state(state: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as file:
        writer = _Writer(file)
        try:
            torch.save(state, cast(BinaryIO, writer))  # write() and flush() are all torch uses
        except RuntimeError:  # torch words a failed write as its own error: the OSError behind it
            if writer.error is None:
                raise
            raise OSError(writer.error.errno, writer.error.strerror, str(path)) from None


class _Writer:
    """A file torch.save writes to that keeps the OSError a write raised (a full disk)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.file.flush()


def load_trainer_state(path: Path) -> dict[str, Any]:
    # weights_only: optimizer tensors, RNG byte tensors and plain numbers; never arbitrary objects
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged file makes the unpickler raise anything (IndexError, ...)
        raise _damaged(path, "truncated or not a torch file") from None


def _damaged(path: Path, reason: str) -> LladaError:
    """A checkpoint file that cannot be read: the step's folder goes, and the one before is used."""
    return LladaError(
        f"cannot read {path} ({reason}); the checkpoint is damaged: remove {path.parent} "
        "to resume from the checkpoint before it"
    )
