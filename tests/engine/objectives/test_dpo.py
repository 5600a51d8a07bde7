"""DPO (objectives/dpo.py, docs/algorithms.md section 14): the loss by hand, the exact AR
likelihood, VRPO's stratified counts and its lower variance than the naive estimator."""

from __future__ import annotations

import copy
import math
import statistics

import pytest
import torch

from llada_cli.engine.objectives.dpo import (
    ARDPOObjective,
    DiffusionDPOObjective,
    answer_log_likelihood,
    dpo_loss,
    mask_counts,
)
from llada_cli.engine.objectives.losses import PairBatch, SFTBatch
from tests.engine.objectives.helpers import EOS, MASK, tiny_model


def test_dpo_loss_by_hand():
    policy = torch.tensor([[-1.0], [-3.0]])  # log pi(chosen), log pi(rejected)
    reference = torch.tensor([[-2.0], [-2.5]])
    loss, metrics = dpo_loss(policy, reference, beta=0.5)
    margin = 0.5 * ((-1.0 + 2.0) - (-3.0 + 2.5))  # 0.75
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-margin))))
    assert metrics["reward_chosen"].item() == pytest.approx(0.5)
    assert metrics["reward_rejected"].item() == pytest.approx(-0.25)
    assert metrics["reward_accuracy"].item() == 1.0
    # DPO-Positive: the chosen answer fell 0.5 nats below the reference: the margin loses 0.5 * 2 * 0.5
    fallen = torch.tensor([[-2.5], [-3.0]])
    loss, _ = dpo_loss(fallen, reference, beta=0.5, dpop_lambda=2.0)
    margin = 0.5 * ((-2.5 + 2.0) - (-3.0 + 2.5)) - 0.5 * 2.0 * 0.5  # 0 - 0.5
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-margin))))


def two_token_answers() -> SFTBatch:
    """Prompt [5, 6], a two-token answer [7, 8] then EOS padding; the second row answers [9, 10]."""
    ids = torch.tensor([[5, 6, 7, 8, EOS], [5, 6, 9, 10, EOS]])
    response = torch.tensor([[0, 0, 1, 1, 0], [0, 0, 1, 1, 0]], dtype=torch.bool)
    pad = torch.tensor([[0, 0, 0, 0, 1], [0, 0, 0, 0, 1]], dtype=torch.bool)
    return SFTBatch(ids, response, pad)


def test_the_ar_likelihood_is_the_answers_log_probabilities_by_hand():
    model = tiny_model(causal=True).eval()
    batch = two_token_answers()
    with torch.no_grad():
        logp = model(batch.input_ids).float().log_softmax(dim=-1)
        got = answer_log_likelihood(model, batch)
    for row, (a, b) in enumerate(((7, 8), (9, 10))):
        expected = logp[row, 1, a] + logp[row, 2, b]  # token 2 from columns <= 1, token 3 from <= 2
        assert got[row].item() == pytest.approx(expected.item(), rel=1e-5)


def test_ar_dpo_starts_at_log_2_and_moves_towards_the_chosen_answer():
    model = tiny_model(causal=True)
    batch = two_token_answers()
    tables = (batch.input_ids, batch.response_mask, batch.pad_mask)
    pair = PairBatch(SFTBatch(*(t[:1] for t in tables)), SFTBatch(*(t[1:] for t in tables)))
    objective = ARDPOObjective(beta=1.0, reference=copy.deepcopy(model).requires_grad_(False))
    out = objective(model, pair, None, 0.0)
    assert out.loss.item() == pytest.approx(math.log(2), rel=1e-6)  # the policy is its reference
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(5):
        optimizer.zero_grad()
        objective(model, pair, None, 0.0).loss.backward()
        optimizer.step()
    assert objective(model, pair, None, 0.0).metrics["reward_chosen"] > 0


def test_stratified_mask_counts_take_one_share_of_the_answer_each():
    lengths = torch.tensor([4, 8, 1])
    counts = mask_counts(lengths, 4, stratified=True, generator=torch.Generator().manual_seed(0))
    assert counts[:, 0].tolist() == [1, 2, 3, 4]  # sample j: a count in the j-th quarter of [1, 4]
    assert [sorted(counts[:, 1].tolist())[j] in (2 * j + 1, 2 * j + 2) for j in range(4)] == [True] * 4
    assert counts[:, 2].tolist() == [1, 1, 1, 1]
    naive = mask_counts(lengths, 1000, stratified=False, generator=torch.Generator().manual_seed(0))
    assert naive.min().item() >= 1 and (naive <= lengths).all()


def diffusion_pair() -> PairBatch:
    ids = torch.tensor([[5, 6, 7, 8, 11, 12, 13, 14]])
    response = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    none = torch.zeros_like(response)
    other = ids.clone()
    other[0, 4:] = torch.tensor([20, 21, 22, 23])
    return PairBatch(SFTBatch(ids, response, none), SFTBatch(other, response, none))


def test_vrpo_estimates_the_preference_margin_with_less_variance_than_the_naive_estimator():
    """LLaDA 1.5: sharing the masks between policy and reference cancels most of their noise."""
    policy = tiny_model(causal=False, seed=1).eval()
    reference = copy.deepcopy(policy)
    with torch.no_grad():  # a policy a few updates away from its reference
        for p in policy.parameters():
            p.add_(0.02 * torch.randn_like(p))
    pair = diffusion_pair()

    def margins(vrpo: bool) -> list[float]:
        objective = DiffusionDPOObjective(beta=1.0, mc_num=4, vrpo=vrpo, reference=reference, mask_id=MASK)
        generator = torch.Generator().manual_seed(0)
        values = []
        with torch.no_grad():
            for _ in range(60):
                metrics = objective(policy, pair, generator, 0.0).metrics
                values.append(float(metrics["reward_chosen"] - metrics["reward_rejected"]))
        return values

    vrpo, naive = margins(True), margins(False)
    assert statistics.variance(vrpo) < 0.5 * statistics.variance(naive)
    assert abs(statistics.fmean(vrpo) - statistics.fmean(naive)) < 3 * statistics.stdev(naive) / math.sqrt(60)
