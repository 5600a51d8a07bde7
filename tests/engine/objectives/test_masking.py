"""Forward processes, loss weights and attention masks against hand-worked cases (docs/algorithms.md 2-5)."""

import math

import pytest
import torch

from llada_cli.engine.objectives.masking import (
    apply_mask,
    bdlm_attention_mask,
    document_attention_mask,
    document_ids,
    equal_blocks,
    loss_weight,
    mask_probability,
    padding_attention_mask,
    sample_mask,
)

EPS = 1e-3


def as_bool(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[c == "1" for c in row] for row in rows])


# -- schedules and weights -----------------------------------------------------------------------


def alpha(t: torch.Tensor, schedule: str) -> torch.Tensor:
    """The schedules' definition (docs/algorithms.md 3): the probability a token stays clean."""
    return 1.0 - t if schedule == "linear" else torch.cos(math.pi * t / 2) ** 2


def test_cosine_mask_probability_is_one_minus_alpha():
    t = torch.tensor([0.25, 0.5, 0.8], dtype=torch.float64)
    assert torch.allclose(mask_probability(t, "cosine", EPS), 1.0 - alpha(t, "cosine"), rtol=1e-12)


def test_linear_mask_probability_is_section_2():
    t = torch.tensor([0.0, 0.5, 1.0])
    # p = (1 - eps) t + eps
    assert torch.allclose(mask_probability(t, "linear", EPS), torch.tensor([0.001, 0.5005, 1.0]))


def test_cosine_mask_probability_clamps_t_like_the_weight():
    t = torch.tensor([0.0, 0.01, 0.5, 1.0])
    # t = 0 is clamped to eps: sin^2(pi eps / 2); t = 0.01: sin^2(0.005 pi) ~ 2.47e-4, not clamped
    edge, small = math.sin(math.pi * EPS / 2) ** 2, math.sin(0.005 * math.pi) ** 2
    expected = torch.tensor([edge, small, 0.5, 1.0])
    assert torch.allclose(mask_probability(t, "cosine", EPS), expected, atol=1e-9, rtol=1e-5)


def test_linear_weight_is_one_over_p():
    t = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(loss_weight(t, "linear", EPS), torch.tensor([1000.0, 1 / 0.5005, 1.0]))


def test_cosine_weight_is_pi_cot_half_pi_t():
    t = torch.tensor([1 / 3, 0.5, 0.0])
    # pi cot(pi/6) = pi sqrt(3); pi cot(pi/4) = pi; t clamped to eps: pi cot(pi eps / 2)
    expected = torch.tensor([math.pi * math.sqrt(3), math.pi, math.pi / math.tan(math.pi * EPS / 2)])
    assert torch.allclose(loss_weight(t, "cosine", EPS), expected, rtol=1e-5)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_weight_is_minus_alpha_prime_over_one_minus_alpha(schedule):
    t = torch.tensor([0.2, 0.45, 0.8], dtype=torch.float64, requires_grad=True)
    clean = alpha(t, schedule)
    (alpha_prime,) = torch.autograd.grad(clean.sum(), t)
    expected = -alpha_prime / (1 - clean)
    got = loss_weight(t.detach(), schedule, eps=0.0)
    assert torch.allclose(got, expected.detach(), rtol=1e-9)


# -- sampling masks -------------------------------------------------------------------------------


def test_mask_rate_matches_p_per_row():
    generator = torch.Generator().manual_seed(0)
    p = torch.tensor([0.1, 0.3, 0.5, 0.9])
    masked = sample_mask(torch.ones(4, 20000, dtype=torch.bool), p, generator)
    # binomial standard deviation at L = 20000 is at most 0.0036
    assert torch.allclose(masked.float().mean(dim=1), p, atol=0.015)


def test_mask_rate_matches_p_per_position():
    generator = torch.Generator().manual_seed(1)
    p = torch.tensor([0.2, 0.8]).repeat_interleave(10000)[None].expand(2, -1)
    masked = sample_mask(torch.ones(2, 20000, dtype=torch.bool), p, generator)
    assert abs(masked[:, :10000].float().mean().item() - 0.2) < 0.015
    assert abs(masked[:, 10000:].float().mean().item() - 0.8) < 0.015


def test_no_mask_is_forced_so_the_expected_mask_count_is_exactly_n_p():
    # nano-llada forced one mask into an unmasked row; LLaDA does not (the estimator stays unbiased)
    generator = torch.Generator().manual_seed(2)
    maskable = torch.ones(20000, 4, dtype=torch.bool)
    masked = sample_mask(maskable, torch.full((20000,), 0.05), generator)
    assert abs(masked.sum(dim=1).float().mean().item() - 4 * 0.05) < 0.01
    assert (masked.sum(dim=1) == 0).float().mean().item() == pytest.approx(0.95**4, abs=0.01)


def test_rows_without_maskable_positions_stay_clean():
    maskable = as_bool(["0000", "0110"])
    masked = sample_mask(maskable, torch.tensor([0.9, 0.9]), torch.Generator().manual_seed(3))
    assert masked[0].sum() == 0
    assert not (masked[1] & ~maskable[1]).any()


def test_pads_and_prompts_are_never_masked():
    generator = torch.Generator().manual_seed(4)
    maskable = torch.rand(64, 32, generator=torch.Generator().manual_seed(5)) < 0.5
    for p in (0.3, 1.0):
        masked = sample_mask(maskable, torch.full((64,), p), generator)
        assert not (masked & ~maskable).any()
    assert torch.equal(masked, maskable)  # p = 1 masks every maskable position


def test_same_seed_gives_same_mask():
    maskable = torch.ones(3, 50, dtype=torch.bool)
    p = torch.tensor([0.2, 0.5, 0.7])
    first = sample_mask(maskable, p, torch.Generator().manual_seed(6))
    second = sample_mask(maskable, p, torch.Generator().manual_seed(6))
    assert torch.equal(first, second)


def test_apply_mask_replaces_masked_ids():
    x0 = torch.tensor([[5, 6, 7, 8]])
    masked = as_bool(["0101"])
    assert apply_mask(x0, masked, mask_id=99).tolist() == [[5, 99, 7, 99]]
    assert x0.tolist() == [[5, 6, 7, 8]]  # the clean ids are not modified


# -- document attention ----------------------------------------------------------------------------


def test_document_ids_increment_after_each_eos():
    eos = 0
    ids = torch.tensor([[5, 0, 7, 8, 0, 0, 9]])
    # the EOS belongs to the document it ends; a lone EOS is a document of its own
    assert document_ids(ids, eos).tolist() == [[0, 0, 1, 1, 1, 2, 3]]


def test_pad_positions_get_ids_of_their_own():
    ids = torch.tensor([[5, 0, 7, 0, 0, 0]])
    pad = as_bool(["000011"])
    # L = 6: pads at positions 4 and 5 get 6 + 4 and 6 + 5
    assert document_ids(ids, 0, pad).tolist() == [[0, 0, 1, 1, 10, 11]]


def test_document_attention_mask_by_hand():
    doc = torch.tensor([[0, 0, 1, 1, 10, 11]])  # two documents then two pads
    bidirectional = document_attention_mask(doc, causal=False)
    assert bidirectional.shape == (1, 1, 6, 6)
    assert (
        bidirectional[0, 0].tolist()
        == as_bool(["110000", "110000", "001100", "001100", "000010", "000001"]).tolist()
    )
    causal = document_attention_mask(doc, causal=True)
    assert (
        causal[0, 0].tolist()
        == as_bool(["100000", "110000", "001000", "001100", "000010", "000001"]).tolist()
    )


def test_no_attention_row_is_ever_empty():
    generator = torch.Generator().manual_seed(7)
    ids = torch.randint(0, 4, (16, 24), generator=generator)  # eos = 0 is frequent
    pad = torch.arange(24)[None] >= torch.randint(1, 25, (16, 1), generator=generator)
    for causal in (False, True):
        mask = document_attention_mask(document_ids(ids, 0, pad), causal)
        assert mask.any(dim=-1).all()


def test_padding_attention_mask_by_hand():
    pad = as_bool(["0011"])
    assert padding_attention_mask(pad)[0, 0].tolist() == as_bool(["1100", "1100", "0010", "0001"]).tolist()


# -- block diffusion -------------------------------------------------------------------------------


def test_bdlm_mask_by_hand_length_4_block_2():
    # order [x_t(0..3) ; x0(0..3)]; blocks {0,1}, {2,3}
    expected = as_bool(
        [
            "11000000",  # noisy 0: its noisy block 0
            "11000000",
            "00111100",  # noisy 2: its noisy block 1 + clean block 0
            "00111100",
            "00001100",  # clean 0: clean block 0
            "00001100",
            "00001111",  # clean 2: clean blocks 0 and 1
            "00001111",
        ]
    )
    assert bdlm_attention_mask(equal_blocks(4, 2)).tolist() == expected.tolist()


def test_bdlm_mask_with_one_block_is_plain_bidirectional_per_half():
    mask = bdlm_attention_mask(equal_blocks(3, 3))
    ones, zeros = torch.ones(3, 3, dtype=torch.bool), torch.zeros(3, 3, dtype=torch.bool)
    assert torch.equal(mask, torch.cat((torch.cat((ones, zeros), 1), torch.cat((zeros, ones), 1))))


def test_bdlm_mask_with_block_1_is_autoregressive_on_the_clean_prefix():
    mask = bdlm_attention_mask(equal_blocks(3, 1))
    noisy_to_clean = mask[:3, 3:]
    assert noisy_to_clean.tolist() == as_bool(["000", "100", "110"]).tolist()
    assert torch.equal(mask[:3, :3], torch.eye(3, dtype=torch.bool))
    assert mask[3:, 3:].tolist() == as_bool(["100", "110", "111"]).tolist()


def test_bdlm_mask_handles_a_short_last_block():
    mask = bdlm_attention_mask(equal_blocks(5, 2))  # blocks {0,1}, {2,3}, {4}
    assert mask[4].tolist() == as_bool(["0000111110"]).tolist()[0]
    assert mask.any(dim=1).all()
