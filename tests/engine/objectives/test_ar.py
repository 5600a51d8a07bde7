"""The AR objectives (objectives/ar.py) against hand computations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.objectives.ar import ARPretrainObjective, ARSFTObjective
from llada_cli.engine.objectives.losses import PretrainBatch, SFTBatch
from tests.engine.objectives.helpers import (
    EOS,
    MASK,
    VOCAB,
    clean_ids,
    sft_batch,
    tiny_model,
    token_ce,
)


class PositionOnlyModel(nn.Module):
    """Logits that depend on the position only, never on the tokens."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.table = nn.Parameter(torch.randn(32, 8))
        self.config = ModelConfig(vocab_size=VOCAB, hidden_size=8, num_attention_heads=1, causal=False)
        self.lm_head = nn.Linear(8, VOCAB, bias=False)

    def hidden_states(self, input_ids, positions, attn_mask, past):
        return self.table[: input_ids.shape[1]].expand(input_ids.shape[0], -1, -1), []


def test_ar_pretrain_is_mean_next_token_cross_entropy():
    model = tiny_model(causal=True)
    ids = clean_ids(2, 10)
    out = ARPretrainObjective(eos_id=EOS)(model, PretrainBatch(ids), None, 0.0)
    with torch.no_grad():
        expected = token_ce(model(ids[:, :-1]), ids[:, 1:]).mean()
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.tokens == 20


def test_ar_doc_mask_equals_running_each_document_alone():
    model = tiny_model(causal=True)
    ids = clean_ids(1, 10)
    ids[0, 4] = EOS  # documents: 0..4 (ending with its EOS) and 5..9
    out = ARPretrainObjective(eos_id=EOS, doc_attention_mask=True)(model, PretrainBatch(ids), None, 0.0)
    with torch.no_grad():
        first = token_ce(model(ids[:, :5]), ids[:, 1:6])  # targets 1..5, the last predicted from the EOS
        second = token_ce(model(ids[:, 5:9], positions=torch.arange(5, 9)), ids[:, 6:10])
    expected = torch.cat((first, second), dim=1).mean()
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_ar_sft_trains_on_response_tokens_only():
    model = tiny_model(causal=True)
    batch = sft_batch()
    out = ARSFTObjective()(model, batch, None, 0.0)
    with torch.no_grad():
        ce = token_ce(model(batch.input_ids[:, :-1]), batch.input_ids[:, 1:])
    is_target = (batch.response_mask & ~batch.pad_mask)[:, 1:]
    assert out.loss.item() == pytest.approx((ce[is_target].sum() / is_target.sum()).item(), rel=1e-5)
    assert out.tokens == 17


def test_ar_sft_loss_ignores_prompt_and_pad_targets():
    model = PositionOnlyModel()  # a changed token alters only its own target's CE
    batch = sft_batch()
    loss = ARSFTObjective()(model, batch, None, 0.0).loss
    for row, col, counts in ((0, 2, False), (0, 8, False), (1, 1, False), (0, 5, True), (1, 9, True)):
        ids = batch.input_ids.clone()
        ids[row, col] = (ids[row, col] + 7) % MASK
        changed = ARSFTObjective()(model, SFTBatch(ids, batch.response_mask, batch.pad_mask), None, 0.0).loss
        assert torch.isclose(loss, changed).item() != counts, (row, col)
