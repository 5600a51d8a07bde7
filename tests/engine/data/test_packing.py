"""Packing rows, the train/validation split, and the resumable BatchStream."""

import numpy as np
import pytest
import torch

from llada_cli.engine.data.packing import BatchStream, pack_rows, rows_at, split_indices
from llada_cli.engine.errors import UsageError

EOS = 0


def test_pack_rows_keeps_consecutive_windows_and_eos() -> None:
    stream = np.array([5, 6, EOS, 7, 8, 9, EOS, 4, 3, EOS, 2], dtype=np.uint16)
    rows = pack_rows(stream, seq_len=4)
    assert rows.dtype == np.uint16  # stored as tokenized: 2 bytes a token
    assert rows.tolist() == [[5, 6, EOS, 7], [8, 9, EOS, 4]]  # the tail [3, EOS, 2] is dropped
    batch = rows_at(rows, torch.tensor([1, 0]))
    assert batch.dtype == torch.int64 and batch.tolist() == [[8, 9, EOS, 4], [5, 6, EOS, 7]]


def test_pack_rows_accepts_a_memmap(tmp_path) -> None:
    np.save(tmp_path / "s.npy", np.arange(12, dtype=np.uint32))
    rows = pack_rows(np.load(tmp_path / "s.npy", mmap_mode="r"), seq_len=6)
    assert isinstance(rows, np.memmap)  # not read into memory
    assert rows.tolist() == [list(range(6)), list(range(6, 12))]


def test_pack_rows_needs_one_full_row() -> None:
    with pytest.raises(UsageError, match="corpus has 3 tokens, fewer than one row of 4; lower `seq_len`"):
        pack_rows(np.arange(3), seq_len=4)


def test_split_indices_is_a_deterministic_partition() -> None:
    train, val = split_indices(10, val_fraction=0.2, seed=0)
    assert (len(train), len(val)) == (8, 2)
    assert sorted(train.tolist() + val.tolist()) == list(range(10))
    assert train.tolist() == sorted(train.tolist())  # corpus order kept
    again = split_indices(10, val_fraction=0.2, seed=0)
    assert torch.equal(again[1], val)
    assert any(not torch.equal(split_indices(10, 0.2, seed=s)[1], val) for s in range(1, 5))


@pytest.mark.parametrize(
    ("num_rows", "fraction", "sizes"),
    [(10, 0.0, (10, 0)), (2, 0.01, (1, 1)), (1, 0.5, (1, 0)), (3, 0.9, (1, 2))],
)
def test_split_indices_edge_sizes(num_rows: int, fraction: float, sizes: tuple[int, int]) -> None:
    train, val = split_indices(num_rows, fraction, seed=0)
    assert (len(train), len(val)) == sizes


def test_split_indices_rejects_bad_fractions() -> None:
    with pytest.raises(UsageError, match=r"`val_fraction` must be in \[0, 1\), got 1.0"):
        split_indices(4, 1.0, seed=0)


def take(stream: BatchStream, batches: int) -> list[list[int]]:
    return [stream.next_indices().tolist() for _ in range(batches)]


def test_each_epoch_is_a_fresh_permutation_seeded_by_seed_plus_epoch() -> None:
    stream = BatchStream(num_rows=6, batch_size=3, seed=7)
    epoch0, epoch1 = sum(take(stream, 2), []), sum(take(stream, 2), [])
    assert sorted(epoch0) == sorted(epoch1) == list(range(6))
    assert epoch0 == torch.randperm(6, generator=torch.Generator().manual_seed(7)).tolist()
    assert epoch1 == torch.randperm(6, generator=torch.Generator().manual_seed(8)).tolist()
    assert stream.epoch == 2 and stream.epochs_done == 2.0
    assert take(BatchStream(6, 3, seed=7), 4) == [epoch0[:3], epoch0[3:], epoch1[:3], epoch1[3:]]


def test_batches_run_across_epoch_boundaries() -> None:
    stream = BatchStream(num_rows=5, batch_size=2, seed=0)
    flat = sum(take(stream, 5), [])
    assert sorted(flat[:5]) == sorted(flat[5:]) == list(range(5))
    assert stream.epochs_done == 2.0
    stream.next_indices()
    assert stream.epochs_done == pytest.approx(2.4)


def test_a_batch_larger_than_the_data_wraps() -> None:
    stream = BatchStream(num_rows=3, batch_size=8, seed=0)
    batch = stream.next_indices().tolist()
    assert len(batch) == 8
    assert sorted(batch[:3]) == sorted(batch[3:6]) == [0, 1, 2]
    assert stream.epochs_done == pytest.approx(2 + 2 / 3)


def test_resume_mid_epoch_gives_the_same_batches() -> None:
    original = BatchStream(num_rows=10, batch_size=4, seed=3)
    take(original, 3)  # ends mid-way through epoch 1
    state = original.state_dict()
    assert state == {"epoch": 1, "position": 2, "num_rows": 10, "seed": 3}
    expected = take(original, 6)
    resumed = BatchStream(num_rows=10, batch_size=4, seed=3)
    resumed.load_state_dict(state)
    assert take(resumed, 6) == expected


def test_resume_on_different_data_is_refused() -> None:
    stream = BatchStream(num_rows=9, batch_size=4, seed=0)
    with pytest.raises(UsageError, match="the data now has 9 rows but had 10"):
        stream.load_state_dict({"epoch": 0, "position": 0, "num_rows": 10, "seed": 0})
