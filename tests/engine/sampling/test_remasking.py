"""Remasking confidences (sampling/remasking.py) by hand, and that each one decodes end to end."""

from __future__ import annotations

import math

import pytest
import torch

from llada_cli.engine.sampling.diffusion import generate_diffusion
from llada_cli.engine.sampling.remasking import entropy, low_confidence, margin
from llada_cli.engine.sampling.settings import DiffusionSettings
from tests.engine.objectives.helpers import MASK, tiny_model

# two slots over three tokens: a sure one and one torn between tokens 0 and 1
PROBS = torch.tensor([[[0.8, 0.1, 0.1], [0.45, 0.45, 0.1]]])


def test_confidences_by_hand():
    logits = PROBS.log()
    candidates = torch.tensor([[0, 1]])
    assert low_confidence(logits, candidates, None)[0].tolist() == pytest.approx([0.8, 0.45])
    assert margin(logits, candidates, None)[0].tolist() == pytest.approx([0.7, 0.0], abs=1e-7)
    h = [-sum(p * math.log(p) for p in row) for row in PROBS[0].tolist()]
    assert entropy(logits, candidates, None)[0].tolist() == pytest.approx([math.exp(-h[0]), math.exp(-h[1])])
    assert entropy(torch.tensor([[[0.0, -1e9, -1e9]]]), candidates[:, :1], None).item() == pytest.approx(1.0)


@pytest.mark.parametrize("remasking", ["margin", "entropy"])
def test_each_confidence_decodes_with_steps_and_with_a_threshold(remasking):
    model = tiny_model(causal=False).eval()
    for options in ({"exact": True, "steps": 4}, {"threshold": 0.5}):
        settings = DiffusionSettings(gen_length=8, block_length=8, remasking=remasking, **options)
        [result] = generate_diffusion(model, [[5, 6, 7]], settings, MASK, {0})
        assert all(token != MASK for token in result.token_ids)
        assert result.forward_passes <= 8
