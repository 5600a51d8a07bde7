"""Reading an external checkpoint file safely: safetensors, or torch.load(weights_only=True), never
unrestricted pickle; then the state dict out of any training wrapper, its names unprefixed."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import LladaError, UsageError

State = dict[str, torch.Tensor]

# Training checkpoints keep the weights under one of these keys (MiniMind resume files: "model";
# Nano-LLaDA: "model_state_dict"); DDP, torch.compile and Hugging Face wrappers prefix the names.
WRAPPER_KEYS = ("model_state_dict", "state_dict", "model")
NAME_PREFIXES = ("module.", "_orig_mod.", "model.")
# Nano-LLaDA saves its argparse namespace next to the weights; these entries fix what shapes cannot.
HINT_KEYS = ("num_attention_heads", "rms_norm_eps", "rope_theta", "seq_len")
# How torch's weights-only unpickler words a refused class or function (other errors: a damaged file).
PYTHON_OBJECT_ERRORS = ("GLOBAL", "new object", "call reduce", "Can only build")


def read_checkpoint(path: Path) -> tuple[State, dict[str, Any]]:
    """The state dict and the hints (HINT_KEYS) saved next to it."""
    obj = _load_object(path)
    hints: dict[str, Any] = {}
    while isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        args = obj.get("args")
        if isinstance(args, dict):
            hints = {k: args[k] for k in HINT_KEYS if isinstance(args.get(k), (int, float))}
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise LladaError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")
    state = {_strip_prefixes(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise LladaError(f"{path} holds no tensors; expected a model state dict")
    return state, hints


EXTERNAL_SUFFIXES = (".pt", ".pth", ".safetensors")


def _load_object(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as err:
            raise LladaError(f"cannot read {path}: {err}; is it a safetensors file?") from None
    if suffix in (".pt", ".pth"):
        return _torch_load(path)
    raise UsageError(
        f"{path}: unknown checkpoint type '{suffix}'; pass one of {', '.join(EXTERNAL_SUFFIXES)}"
    )


def _torch_load(path: Path) -> Any:
    try:
        with warnings.catch_warnings():  # a plain pickle's protocol warning: the error below says it
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # bytes that are not a checkpoint make the unpickler raise anything
        if any(marker in str(err) for marker in PYTHON_OBJECT_ERRORS):  # refused before constructing it
            raise LladaError(
                f"{path} holds non-tensor Python objects and cannot be loaded safely; "
                "re-save it as torch.save(model.state_dict(), ...) or as .safetensors"
            ) from None
        raise LladaError(f"cannot read {path}: not a PyTorch checkpoint ({type(err).__name__})") from None


def _strip_prefixes(name: str) -> str:
    while name.startswith(NAME_PREFIXES):
        name = name.split(".", 1)[1]
    return name
