"""Cut the token stream into fixed-length rows, split off validation rows, and batch them.

Rows are consecutive windows of the stream, so EOS tokens between documents stay where they
were and a document mask can be rebuilt from them. Batches come from BatchStream, whose whole
state is two integers: a resumed run sees exactly the batches an uninterrupted one would.
"""

import numpy as np
import torch

from ..errors import UsageError, named


def pack_rows(stream: np.ndarray, seq_len: int) -> np.ndarray:
    """(N, seq_len) rows of consecutive tokens; the tail shorter than a row is dropped.

    A view of the stream, not a copy: a memory-mapped token cache stays on disk in its own dtype
    (2 bytes a token under 65,536 ids) and `rows_at` reads the rows a batch needs.
    """
    if seq_len < 1:
        raise UsageError(f"{named('seq_len')} must be at least 1, got {seq_len}")
    num_rows = len(stream) // seq_len
    if num_rows == 0:
        raise UsageError(
            f"corpus has {len(stream)} tokens, fewer than one row of {seq_len}; "
            f"lower {named('seq_len')} or add data"
        )
    return stream[: num_rows * seq_len].reshape(num_rows, seq_len)


def rows_at(table: np.ndarray, indices: torch.Tensor) -> torch.Tensor:
    """Rows `indices` of a table (in memory or memory-mapped) as a tensor: token ids are widened to
    int64 here, masks stay bool."""
    rows = table[indices.numpy()]
    return torch.from_numpy(rows.astype(np.int64) if rows.dtype.kind in "ui" else rows)


def split_indices(num_rows: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) row indices by a seeded permutation; both in corpus order.

    Validation gets at least one row whenever it is asked for and there are two rows to share;
    training always keeps at least one.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"{named('val_fraction')} must be in [0, 1), got {val_fraction}")
    num_val = round(num_rows * val_fraction)
    if val_fraction > 0 and num_rows >= 2:
        num_val = max(num_val, 1)
    num_val = min(num_val, max(num_rows - 1, 0))
    order = torch.randperm(num_rows, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:num_val].sort().values, order[num_val:].sort().values
    return train_idx, val_idx


class BatchStream:
    """Endless deterministic shuffled batches over epochs; its state (epoch, position) makes resume exact.

    Conceptually an infinite sequence: the permutation of epoch 0 (seeded by seed + 0), then that
    of epoch 1 (seed + 1), and so on. A batch is the next `batch_size` indices of that sequence,
    so a batch may end one epoch and start the next, and a batch larger than the data wraps
    around, taking each row once per epoch it covers.

    With several processes (`world_size`), a global batch is batch_size * world_size indices of
    that sequence and process `rank` takes its slice: every process keeps the same state.
    """

    def __init__(self, num_rows: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if num_rows < 1 or batch_size < 1:
            raise UsageError(
                f"batches need rows and a batch size >= 1 (rows: {num_rows}, batch size: {batch_size})"
            )
        self.num_rows = num_rows
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.position = 0  # rows of the current epoch's permutation already handed out
        self._permutation = self._permutation_of(0)

    def _permutation_of(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.num_rows, generator=torch.Generator().manual_seed(self.seed + epoch))

    @property
    def epochs_done(self) -> float:
        return self.epoch + self.position / self.num_rows

    def next_indices(self) -> torch.Tensor:
        """This process's rows of the next global batch."""
        pieces, needed = [], self.batch_size * self.world_size
        while needed > 0:
            take = min(needed, self.num_rows - self.position)
            pieces.append(self._permutation[self.position : self.position + take])
            self.position += take
            needed -= take
            if self.position == self.num_rows:
                self.epoch, self.position = self.epoch + 1, 0
                self._permutation = self._permutation_of(self.epoch)
        return torch.cat(pieces)[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "num_rows": self.num_rows, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue exactly where `state` left off; the data must have as many rows as then."""
        if state["num_rows"] != self.num_rows:
            raise UsageError(
                f"cannot resume: the data now has {self.num_rows} rows but had {state['num_rows']}; "
                f"resume with the same data and {named('seq_len')}"
            )
        self.seed, self.epoch, self.position = state["seed"], state["epoch"], state["position"]
        self._permutation = self._permutation_of(self.epoch)
