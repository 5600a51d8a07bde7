"""Shared loss pieces (objectives/losses.py): the BDLM forward and SFT batches cut to the longest row."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llada_cli.engine.objectives import losses
from llada_cli.engine.objectives.losses import bdlm_logits, plain_cross_entropy
from llada_cli.engine.objectives.masking import apply_mask, equal_blocks
from tests.engine.objectives.helpers import (
    EOS,
    MASK,
    VOCAB,
    ConstantModel,
    clean_ids,
    sft,
    tiny_model,
)


def bdlm_cross_entropy(model, x0, xt, masked, block_size, doc_ids):
    return F.cross_entropy(
        bdlm_logits(model, x0, xt, masked, equal_blocks(x0.shape[1], block_size), doc_ids),
        x0[masked],
        reduction="none",
    )


def test_bdlm_with_one_block_equals_plain_masked_diffusion():
    model = tiny_model(causal=False)
    x0 = clean_ids(2, 12)
    x0[:, 5] = EOS
    masked = torch.rand(2, 12, generator=torch.Generator().manual_seed(3)) < 0.5
    xt = apply_mask(x0, masked, MASK)
    with torch.no_grad():
        plain = plain_cross_entropy(model, x0, xt, masked, attn_mask=None)
        block = bdlm_cross_entropy(model, x0, xt, masked, block_size=12, doc_ids=None)
    assert torch.allclose(plain, block, atol=1e-5)


def test_bdlm_block_sees_only_itself_and_earlier_clean_blocks():
    model = tiny_model(causal=False)
    x0 = clean_ids(1, 8)
    masked = torch.tensor([[True, False, True, False, True, True, False, False]])
    changed = x0.clone()
    changed[0, 4:] = (changed[0, 4:] + 1) % MASK  # rewrite block 1 (positions 4..7), clean and noisy
    with torch.no_grad():
        before = bdlm_cross_entropy(model, x0, apply_mask(x0, masked, MASK), masked, 4, None)
        after = bdlm_cross_entropy(model, changed, apply_mask(changed, masked, MASK), masked, 4, None)
        earlier = x0.clone()
        earlier[0, 1] = (
            earlier[0, 1] + 1
        ) % MASK  # an unmasked token of block 0: block 1 sees its clean copy
        seen = bdlm_cross_entropy(model, earlier, apply_mask(earlier, masked, MASK), masked, 4, None)
    assert torch.allclose(before[:2], after[:2], atol=1e-6)  # block 0's masked positions 0 and 2
    assert not torch.allclose(before[2:], seen[2:], atol=1e-6)  # block 1's masked 4, 5 see clean block 0


def test_sft_rows_are_padded_to_the_longest_row_of_the_batch():
    # rows stored at --seq-len 16: row 0 = prompt 4 + answer 3, row 1 = prompt 3 + answer 7
    ids, response, pad = (
        clean_ids(2, 16),
        torch.zeros(2, 16, dtype=torch.bool),
        torch.zeros(2, 16, dtype=torch.bool),
    )
    response[0, 4:7], response[1, 3:10] = True, True
    pad[0, 7:], pad[1, 10:] = True, True
    ids[pad] = EOS
    batch = losses.sft_batch(ids, response, pad)
    assert batch.input_ids.shape == (2, 10) and torch.equal(batch.input_ids, ids[:, :10])
    model = ConstantModel()
    out = sft(mask_ratio_band=(0.5, 0.5))(model, batch, torch.Generator().manual_seed(0), 0.0)
    masked = (model.inputs[0] == MASK).sum(dim=1).tolist()
    # answer_len of the short row = longest row (10) - its prompt (4) = 6, not 16 - 4 = 12
    expected = math.log(VOCAB) * (masked[0] / 0.5005 / 6 + masked[1] / 0.5005 / 7) / 2
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
