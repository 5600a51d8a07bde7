"""Model weights (safetensors, config in the metadata) and trainer state (torch.load weights_only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path
from ..config import ModelConfig
from ..errors import LladaError
from .transformer import Transformer

WEIGHTS_FILE = "model.safetensors"
TRAINER_FILE = "trainer.pt"


def save_weights(config: ModelConfig, state: dict[str, torch.Tensor], path: Path) -> None:
    """One safetensors file with the model config in its metadata; a tied head is stored once."""
    metadata = {"config": json.dumps(config.to_dict()), "format": "llada-v1"}
    tensors = {name: tensor.contiguous() for name, tensor in state.items()}
    if config.tie_embeddings:
        tensors.pop("lm_head.weight", None)  # load_weights restores it from the embedding
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


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
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise _damaged(path, str(err)) from None
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


def save_trainer_state(state: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


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
