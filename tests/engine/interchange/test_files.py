"""Reading checkpoint files (interchange/files.py): what is refused, and nothing is unpickled."""

from __future__ import annotations

import random

import pytest
import torch

from llada_cli.engine.errors import LladaError, UsageError
from llada_cli.engine.interchange.files import read_checkpoint
from llada_cli.engine.interchange.importing import load_external_model
from tests.engine.interchange.test_importing import minimind_state

UNPICKLED = []


def _record_unpickling() -> None:
    UNPICKLED.append(True)


class Payload:
    """Unpickling this calls _record_unpickling: a stand-in for code a hostile file would run."""

    def __reduce__(self):
        return (_record_unpickling, ())


def test_a_pickle_with_python_objects_is_refused_without_unpickling_it(tmp_path):
    torch.save({"model": minimind_state("minimind"), "trainer": Payload()}, tmp_path / "ckpt.pt")
    with pytest.raises(LladaError, match="non-tensor Python objects and cannot be loaded safely"):
        read_checkpoint(tmp_path / "ckpt.pt")
    assert UNPICKLED == []


def test_unreadable_files_are_refused(tmp_path):
    with pytest.raises(UsageError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "model.ckpt").write_bytes(b"x")
    with pytest.raises(UsageError, match="unknown checkpoint type '.ckpt'"):
        read_checkpoint(tmp_path / "model.ckpt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(LladaError, match="not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "text.pt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(LladaError, match="unknown checkpoint layout"):
        load_external_model(tmp_path / "other.pt", causal=True)


@pytest.mark.parametrize("seed", [8, 0, 1, 2])
def test_noise_after_a_pickle_header_is_not_a_checkpoint(tmp_path, seed):
    # a pickle header then random bytes: the unpickler fails as it likes (IndexError for seed 8)
    noise = random.Random(seed)
    path = tmp_path / "noise.pt"
    path.write_bytes(bytes([0x80, 2]) + bytes(noise.randrange(256) for _ in range(64)))
    with pytest.raises(LladaError, match="not a PyTorch checkpoint"):
        read_checkpoint(path)
