"""GRPO (objectives/grpo.py, docs/algorithms.md section 15): group advantages, the clipped
surrogate and the KL term by hand, the exact AR and d1 per-token log-probabilities, and the reuse
of one batch of sampled answers over inner steps."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from llada_cli.engine.objectives.grpo import (
    ARGRPOObjective,
    Completions,
    DiffusionGRPOObjective,
    Memory,
    ar_token_log_probs,
    coupled_token_log_probs,
    d1_token_log_probs,
    group_advantages,
    grpo_loss,
)
from llada_cli.engine.objectives.losses import PromptBatch
from tests.engine.objectives.helpers import EOS, MASK, tiny_model


def test_advantages_are_rewards_against_their_group_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    got = group_advantages(rewards, group_size=4)
    # group 1: mean 0.25, std with Bessel's correction sqrt((0.75² + 3 * 0.25²) / 3) = 0.5
    expected = [0.75 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001, 0, 0, 0, 0]
    assert got.tolist() == pytest.approx(expected, abs=1e-6)


def test_the_ratio_is_clipped_on_the_side_the_advantage_gains_from_by_hand():
    completion = torch.tensor([[False, True, True], [False, True, True]])
    old = torch.log(torch.tensor([0.4, 0.4, 0.4, 0.4]))
    ratios = torch.tensor([1.5, 0.5, 1.5, 0.5])  # row 0: advantage +1, row 1: -1
    logp = (old + ratios.log()).requires_grad_()
    loss, metrics = grpo_loss(logp, old, None, torch.tensor([1.0, -1.0]), completion, 0.2, 0.0)
    # +1: min(1.5, 1.2) = 1.2 (clipped), min(0.5, 0.8) = 0.5
    # -1: min(-1.5, -1.2) = -1.5, min(-0.5, -0.8) = -0.8 (clipped)
    per_answer = [(1.2 + 0.5) / 2, (-1.5 - 0.8) / 2]
    assert loss.item() == pytest.approx(-sum(per_answer) / 2, rel=1e-6)
    loss.backward()
    # a clipped token has no gradient; the others d(-rho * A / 2 / 2) / d logp = -rho * A / 4
    assert logp.grad.tolist() == pytest.approx([0.0, -0.5 / 4, 1.5 / 4, 0.0], abs=1e-6)
    assert metrics["clip_fraction"].item() == 1.0  # every ratio is outside [0.8, 1.2]


def test_the_kl_term_is_k3_by_hand_and_never_negative():
    completion = torch.tensor([[True, True]])
    logp = torch.tensor([-1.0, -2.0])
    reference = torch.tensor([-1.5, -1.0])
    loss, metrics = grpo_loss(logp, logp, reference, torch.tensor([0.0]), completion, 0.2, 0.5)
    k3 = [math.exp(g) - g - 1 for g in (-0.5, 1.0)]
    assert metrics["kl"].item() == pytest.approx(sum(k3) / 2, rel=1e-6)
    assert loss.item() == pytest.approx(0.5 * sum(k3) / 2, rel=1e-6)  # no advantage: the KL alone
    assert all(k > 0 for k in k3)


def completions_of(ids: list[list[int]], prompt_len: int, answer_len: int, region_len: int) -> Completions:
    x = torch.tensor(ids)
    columns = torch.arange(x.shape[1])[None, :].expand_as(x)
    prompt = columns < prompt_len
    completion = (columns >= prompt_len) & (columns < prompt_len + answer_len)
    region = (columns >= prompt_len) & (columns < prompt_len + region_len)
    return Completions(x, prompt, region, completion, torch.zeros_like(prompt), torch.zeros(x.shape[0]))


def test_ar_token_log_probabilities_are_the_exact_ones_by_hand():
    model = tiny_model(causal=True).eval()
    c = completions_of([[5, 6, 7, 8, EOS], [5, 6, 9, 10, EOS]], prompt_len=2, answer_len=2, region_len=2)
    with torch.no_grad():
        logp = model(c.input_ids).float().log_softmax(dim=-1)
        got = ar_token_log_probs(model, c)
    expected = [logp[0, 1, 7], logp[0, 2, 8], logp[1, 1, 9], logp[1, 2, 10]]
    assert got.tolist() == pytest.approx([e.item() for e in expected], rel=1e-5)


@pytest.mark.parametrize("shift", [False, True])
def test_d1_masks_the_whole_region_and_the_given_prompt_tokens_and_reads_each_answer_slot(shift):
    model = tiny_model(causal=False, logit_shift=shift).eval()
    c = completions_of([[5, 6, 7, 8, 9, EOS, EOS]], prompt_len=3, answer_len=2, region_len=4)
    masked_prompt = torch.tensor([[False, True, False, False, False, False, False]])
    with torch.no_grad():
        got = d1_token_log_probs(model, c, masked_prompt, MASK)
        noisy = torch.tensor([[5, MASK, 7, MASK, MASK, MASK, MASK]])  # all four region slots masked
        logp = model(noisy).float().log_softmax(dim=-1)
    assert got.tolist() == pytest.approx([logp[0, 3, 8].item(), logp[0, 4, 9].item()], rel=1e-5)


@pytest.mark.parametrize("shift", [False, True])
def test_coupled_reads_each_answer_token_in_the_pass_that_masks_it(shift):
    model = tiny_model(causal=False, logit_shift=shift).eval()
    c = completions_of([[5, 6, 7, 8, 9, EOS]], prompt_len=2, answer_len=3, region_len=4)
    masked = torch.tensor([[False, False, True, False, True, False]])  # answer slots 0 and 2 first
    with torch.no_grad():
        got = coupled_token_log_probs(model, c, masked, MASK)
        first = model(torch.tensor([[5, 6, MASK, 8, MASK, EOS]])).float().log_softmax(dim=-1)
        second = model(torch.tensor([[5, 6, 7, MASK, 9, MASK]])).float().log_softmax(dim=-1)
    expected = [first[0, 2, 7], second[0, 3, 8], first[0, 4, 9]]
    assert got.tolist() == pytest.approx([e.item() for e in expected], rel=1e-5)


class FixedRollout:
    """Two prompts of group size 2: the same four answers every call, rewards 1, 0, 0, 1; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model, batch, generator) -> Completions:
        self.calls += 1
        answers = [[5, 6, 7, 8, EOS], [5, 6, 9, 10, EOS], [5, 6, 11, 12, EOS], [5, 6, 13, 14, EOS]]
        c = completions_of(answers, prompt_len=2, answer_len=3, region_len=3)
        c.rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
        return c


def prompts() -> PromptBatch:
    return PromptBatch(torch.tensor([[5, 6], [5, 6]]), torch.tensor([2, 2]), torch.tensor([0, 1]))


@pytest.mark.parametrize("diffusion", [False, True])
def test_sampled_answers_serve_inner_steps_with_the_sampling_policy_fixed(diffusion):
    model = tiny_model(causal=not diffusion)
    rollout = FixedRollout()
    options = dict(reference=copy.deepcopy(model), rollout=rollout, group_size=2, inner_steps=2)
    objective = DiffusionGRPOObjective(**options, mask_id=MASK) if diffusion else ARGRPOObjective(**options)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    generator = torch.Generator().manual_seed(0)
    clips = []
    for _ in range(3):
        out = objective(model, prompts(), generator, 0.0)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        clips.append(out.metrics["clip_fraction"].item())
        assert out.metrics["reward"].item() == 0.5 and out.tokens.item() == 12
    assert rollout.calls == 2  # steps 1 and 3 sample; step 2 reuses step 1's answers
    assert clips[0] == 0.0 and clips[2] == 0.0  # the policy is the sampling policy: ratio 1
    kept = objective.memory.kept[0]
    assert len(kept.old) == 2 and len(kept.reference) == 2
    # the memory round-trips through a checkpoint's state (plain tensors and numbers)
    restored = Memory()
    restored.load_state_dict(objective.state_dict())
    assert restored.calls == 3 and torch.equal(restored.kept[0].old[1], kept.old[1])


def test_the_second_inner_step_scores_against_the_old_policy():
    model = tiny_model(causal=True)
    objective = ARGRPOObjective(
        reference=copy.deepcopy(model), rollout=FixedRollout(), group_size=2, inner_steps=2, kl_beta=0.0
    )
    generator = torch.Generator().manual_seed(0)
    first = objective(model, prompts(), generator, 0.0)
    first.loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 5.0 * p.grad  # a large step, so ratios leave [0.8, 1.2]
    second = objective(model, prompts(), generator, 0.0)
    assert second.metrics["clip_fraction"].item() > 0
