"""Which process this is: rank, world size, the main process, and a barrier.

torchrun starts one process per device and tells each its RANK, LOCAL_RANK and WORLD_SIZE; a
plain `llada` process is a world of one. Every side effect of training (run.json, metrics,
checkpoints, the tokenizer, progress output) happens on the main process only, and every
process reads its own share of each global batch (data/packing.py BatchStream).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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
