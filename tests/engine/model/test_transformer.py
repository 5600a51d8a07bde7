"""The model's building blocks (model/transformer.py) against hand-worked values, the logit shift's
alignment included."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.model.transformer import Transformer, aligned, rotate


def test_rotate_turns_each_half_split_pair_by_its_angle():
    # head size 4: pairs (x0, x2) and (x1, x3) turn by angles a and b
    a, b = math.pi / 2, math.pi
    cos = torch.tensor([math.cos(a), math.cos(b)] * 2)
    signed_sin = torch.tensor([-math.sin(a), -math.sin(b), math.sin(a), math.sin(b)])
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])

    # (1, 3) turned a quarter: (-3, 1); (2, 4) turned a half: (-2, -4)
    torch.testing.assert_close(rotate(x, cos, signed_sin), torch.tensor([-3.0, -2.0, 1.0, -4.0]))


def test_rope_gives_the_cos_and_signed_sin_rotate_expects():
    model = Transformer(ModelConfig(vocab_size=8, hidden_size=8, num_attention_heads=2, rope_theta=100.0))
    cos, signed_sin = model.rope(torch.tensor([3]))
    angles = 3 * torch.tensor([1.0, 100.0**-0.5])  # inv_freq = theta^(-2i/d), d = 4
    torch.testing.assert_close(cos[0], torch.cat((angles.cos(), angles.cos())))
    torch.testing.assert_close(signed_sin[0], torch.cat((-angles.sin(), angles.sin())))


def test_aligned_by_hand() -> None:
    hidden = torch.arange(6.0).view(1, 3, 2)  # columns (0, 1), (2, 3), (4, 5)
    shifted = ModelConfig(vocab_size=8, hidden_size=2, num_attention_heads=1, logit_shift=True)
    assert aligned(hidden, shifted).tolist() == [[[0, 1], [0, 1], [2, 3]]]  # column 0 reads itself
    before = torch.tensor([[[9.0, 9.0]]])
    assert aligned(hidden, shifted, before).tolist() == [[[9, 9], [0, 1], [2, 3]]]
    assert aligned(hidden, replace(shifted, logit_shift=False)).tolist() == hidden.tolist()
