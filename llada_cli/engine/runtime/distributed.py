"""Which process this is: rank, world size, the main process, and a barrier.

torchrun starts one process per device and tells each its RANK, LOCAL_RANK and WORLD_SIZE; a
plain `llada` process is a world of one. Every side effect of training (run.json, metrics,
checkpoints, the tokenizer, progress output) happens on the main process only, and every
process reads its own share of each global batch (data/packing.py BatchStream).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def current(cls) -> World:
        """This process's place, from the process group when there is one, else torchrun's variables."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
        return cls(
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )

    def barrier(self) -> None:
        """Wait until every process gets here (nothing to wait for in a world of one)."""
        if self.world_size > 1 and dist.is_available() and dist.is_initialized():
            dist.barrier()

    @classmethod
    def join(cls, device: torch.device) -> World:
        """This process's place; under torchrun, first join the process group (NCCL on CUDA, else gloo)."""
        world = cls.current()
        if world.world_size > 1 and not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(world.local_rank)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return world

    def leave(self) -> None:
        """Close the process group once every process is done with it: a gloo group still open at
        exit, or closed while a peer still talks to it, aborts the process."""
        if self.world_size > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    def average_gradients(self, model: torch.nn.Module) -> None:
        """Every process's gradients replaced by their mean over the processes: one bucket, one call."""
        if self.world_size == 1:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        for grad, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
            grad.copy_(part.view_as(grad))

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over the processes (the tensor itself in a world of one)."""
        if self.world_size > 1:
            dist.all_reduce(values)
        return values

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value`, in rank order (only the main process needs the result)."""
        if self.world_size == 1:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered
