"""FSDP2 (`fsdp`): weights, gradients and optimizer state sharded over the processes.

Each block and then the whole model is wrapped with `fully_shard`, so a process holds only its
share of every tensor and gathers one block's weights at a time. Checkpoints stay whole: the
full state is gathered (a collective: every process calls it) and the main process writes it,
so a run trained sharded resumes, samples and evaluates in one process, and the other way round.
Without `fsdp` the same functions read and load the plain module, so the trainer has one path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from .device import AUTOCAST

if TYPE_CHECKING:
    from torch.distributed.checkpoint.state_dict import ValueType

    from ..model.transformer import Transformer

WHOLE = StateDictOptions(full_state_dict=True, cpu_offload=True)


def shard(model: Transformer, world_size: int, device: torch.device, dtype: str) -> None:
    """Shard `model` in place over the processes; under bf16/fp16 compute in it, reduce in fp32."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    mesh = init_device_mesh(device.type, (world_size,))
    policy = MixedPrecisionPolicy(param_dtype=AUTOCAST.get(dtype), reduce_dtype=torch.float32)
    for block in model.layers:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    # the objectives and samplers call hidden_states, then lm_head on the positions they score: the
    # root's gather must run there too (and, as the root, it keeps the head gathered until backward)
    register_fsdp_forward_method(model, "hidden_states")


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def reshard(model: nn.Module) -> None:
    """Put back the shards after a forward without backward (validation): the root keeps its
    weights gathered after forward, and only a backward pass would release them."""
    from torch.distributed.fsdp import FSDPModule

    if isinstance(model, FSDPModule):  # as is_sharded, which the type checker cannot see through
        model.reshard()


def whole_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every weight in full, on the CPU (sharded: gathered from every process)."""
    if not is_sharded(model):
        return model.state_dict()
    # full_state_dict: every value is a whole tensor (the annotation also covers sharded and nested ones)
    return cast("dict[str, torch.Tensor]", get_model_state_dict(model, options=WHOLE))


def load_whole_weights(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    if not is_sharded(model):
        model.load_state_dict(state)
        return
    # torch annotates a dict of any state value, where it only reads: a dict of tensors is one
    set_model_state_dict(model, cast("dict[str, ValueType]", state), options=WHOLE)


def optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state keyed by weight name, whole: the same file for any number of processes."""
    return get_optimizer_state_dict(model, optimizer, options=WHOLE)


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    if all(isinstance(p, int) for group in state["param_groups"] for p in group["params"]):
        # saved by an earlier llada: keyed by position, not by name
        optimizer.load_state_dict(state)
        return
    set_optimizer_state_dict(model, optimizer, state, options=WHOLE)
