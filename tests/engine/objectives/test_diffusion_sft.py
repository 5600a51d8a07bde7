"""The diffusion SFT objective (objectives/diffusion_sft.py) against hand computations with the same
random draws (docs/algorithms.md 3, 6)."""

from __future__ import annotations

import math

import pytest
import torch

from llada_cli.engine.objectives.diffusion_sft import DiffusionSFTObjective
from llada_cli.engine.objectives.losses import SFTBatch
from llada_cli.engine.objectives.masking import apply_mask, mask_probability, sample_mask
from tests.engine.objectives.helpers import (
    EPS,
    MASK,
    VOCAB,
    ConstantModel,
    clean_ids,
    monte_carlo_mean,
    sft,
    sft_batch,
    tiny_model,
    token_ce,
)


def test_diffusion_sft_never_masks_the_prompt():
    batch = sft_batch()
    for policy in ("capped", "eos", "ignore"):
        model = ConstantModel()
        for seed in range(50):
            sft(pad_policy=policy)(model, batch, torch.Generator().manual_seed(seed), 0.0)
        seen = torch.stack(model.inputs) == MASK
        maskable = batch.response_mask if policy == "ignore" else batch.response_mask | batch.pad_mask
        assert not (seen & ~maskable).any()
        assert seen.any(dim=0)[maskable].all()  # every maskable position was masked at some point


def test_diffusion_sft_divides_by_answer_length_by_hand():
    model = ConstantModel()
    batch = sft_batch()
    # band (0.5, 0.5) fixes t = 0.5, so p = 0.5005 for every row
    out = sft(mask_ratio_band=(0.5, 0.5), pad_policy="eos")(
        model, batch, torch.Generator().manual_seed(0), 0.0
    )
    masked = (model.inputs[0] == MASK).sum(dim=1).tolist()
    # answer_len: row 0 = 3 response + 3 EOS padding = 6, row 1 = 7
    expected = math.log(VOCAB) * (masked[0] / 0.5005 / 6 + masked[1] / 0.5005 / 7) / 2
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.tokens == 17
    out = sft(mask_ratio_band=(0.5, 0.5), pad_policy="ignore")(
        model, batch, torch.Generator().manual_seed(0), 0.0
    )
    masked = (model.inputs[1] == MASK).sum(dim=1).tolist()
    expected = math.log(VOCAB) * (masked[0] / 0.5005 / 3 + masked[1] / 0.5005 / 7) / 2
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)


def test_diffusion_sft_equals_hand_computation_with_same_draws():
    model = tiny_model(causal=False)
    batch = sft_batch()
    out = sft(pad_policy="eos")(model, batch, torch.Generator().manual_seed(9), 0.0)
    generator = torch.Generator().manual_seed(9)
    p = (1 - EPS) * torch.rand(2, generator=generator) + EPS
    answer = batch.response_mask | batch.pad_mask
    masked = sample_mask(answer, p, generator)
    with torch.no_grad():
        ce = token_ce(model(apply_mask(batch.input_ids, masked, MASK)), batch.input_ids)
    per_row = (ce * masked).sum(dim=1) / p / answer.sum(dim=1)
    assert out.loss.item() == pytest.approx(per_row.mean().item(), rel=1e-5)


def test_capped_padding_weighs_at_most_pad_tokens_answer_tokens_by_hand():
    model = ConstantModel()
    batch = sft_batch()  # row 0: 3 response tokens + 3 EOS padding; row 1: 7 response tokens
    out = sft(mask_ratio_band=(0.5, 0.5), pad_tokens=2)(model, batch, torch.Generator().manual_seed(0), 0.0)
    seen = model.inputs[0] == MASK
    answer0 = int(seen[0, :7].sum())
    pad0 = int(seen[0, 7:].sum())
    # row 0: answer tokens weigh 1, each EOS 2/3; answer_len = 3 + 3 * 2/3 = 5
    row0 = (answer0 + pad0 * 2 / 3) / 0.5005 / 5
    row1 = int(seen[1].sum()) / 0.5005 / 7
    assert out.loss.item() == pytest.approx(math.log(VOCAB) * (row0 + row1) / 2, rel=1e-6)
    share = (pad0 * 2 / 3) / (answer0 + pad0 * 2 / 3 + int(seen[1].sum()))
    assert out.metrics["pad_weight_share"].item() == pytest.approx(share, rel=1e-6)
    # a pad budget above the padding's length changes nothing: each EOS weighs 1, as LLaDA
    model = ConstantModel()
    capped = sft(mask_ratio_band=(0.5, 0.5), pad_tokens=3)(
        model, batch, torch.Generator().manual_seed(0), 0.0
    )
    model = ConstantModel()
    llada = sft(mask_ratio_band=(0.5, 0.5), pad_policy="eos")(
        model, batch, torch.Generator().manual_seed(0), 0.0
    )
    assert capped.loss.item() == pytest.approx(llada.loss.item(), rel=1e-6)


def test_ignore_policy_hides_padding_and_stays_finite():
    model = tiny_model(causal=False)
    batch = sft_batch()
    out = sft(pad_policy="ignore")(model, batch, torch.Generator().manual_seed(0), 0.0)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    recorder = ConstantModel()
    sft(pad_policy="ignore")(recorder, batch, torch.Generator().manual_seed(0), 0.0)
    attn = recorder.attn_masks[0]
    assert not attn[0, 0, :7, 7:].any() and attn[0, 0, 8, 8]


def test_complementary_masking_trains_every_response_token_exactly_once():
    batch = sft_batch()
    answer = batch.response_mask | batch.pad_mask
    for seed in range(20):
        model = ConstantModel()
        out = sft(complementary_masking=True)(model, batch, torch.Generator().manual_seed(seed), 0.0)
        seen = model.inputs[0] == MASK
        assert seen.shape == (4, 10)
        first, twin = seen[:2], seen[2:]
        assert not (first & twin).any()
        assert torch.equal(first | twin, answer)
        assert torch.isfinite(out.loss)


def test_complementary_masking_loss_by_hand():
    model = ConstantModel()
    batch = sft_batch()
    out = sft(complementary_masking=True, mask_ratio_band=(0.3, 0.3))(
        model, batch, torch.Generator().manual_seed(0), 0.0
    )
    masked = (model.inputs[0] == MASK).sum(dim=1).tolist()
    p = 0.7 * EPS + 0.3  # (1 - eps) t + eps at t = 0.3; the twin rows use 1 - p
    lengths = [6, 7, 6, 7]
    ps = [p, p, 1 - p, 1 - p]
    expected = math.log(VOCAB) * sum(m / q / n for m, q, n in zip(masked, ps, lengths, strict=True)) / 4
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)


def test_mask_ratio_band_keeps_p_in_band():
    objective = sft(mask_ratio_band=(0.2, 0.4))
    t = objective.draw_t(10000, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert t.min() >= 0.2 and t.max() < 0.4 and t.max() > 0.39 and t.min() < 0.21
    p = mask_probability(t, "linear", EPS)
    assert p.min() >= 0.2 and p.max() <= 0.4 + EPS
    ids = clean_ids(1, 4000)
    batch = SFTBatch(ids, torch.ones_like(ids, dtype=torch.bool), torch.zeros_like(ids, dtype=torch.bool))
    rates = [
        float(objective(ConstantModel(), batch, torch.Generator().manual_seed(s), 0.0).metrics["mask_rate"])
        for s in range(30)
    ]
    assert min(rates) > 0.2 - 0.03 and max(rates) < 0.4 + 0.03


def sft_rows(rows: int, length: int, prompt: int) -> SFTBatch:
    answer = torch.arange(length)[None, :].expand(rows, -1) >= prompt
    return SFTBatch(torch.zeros(rows, length, dtype=torch.long), answer, torch.zeros_like(answer))


@pytest.mark.parametrize(
    "objective",
    [
        DiffusionSFTObjective(mask_id=1),
        DiffusionSFTObjective(mask_id=1, complementary_masking=True),
        DiffusionSFTObjective(mask_id=1, mask_ratio_band=(0.2, 0.8)),
    ],
    ids=["sft", "complementary", "band"],
)
def test_sft_loss_is_an_unbiased_estimate(objective):
    # per row: sum CE / p / answer_len has expectation CE = 2, whatever the answer length (3 here)
    assert monte_carlo_mean(objective, sft_rows(256, 8, prompt=5), draws=200) == pytest.approx(2.0, rel=0.01)
