"""The diffusion pretraining objective (objectives/diffusion_pretraining.py) against hand computations
with the same random draws (docs/algorithms.md 2-6, 10). The AR, diffusion SFT and shared loss tests
sit beside this file; helpers.py holds the models and batches they share."""

import math
from dataclasses import replace

import pytest
import torch

from llada_cli.engine.objectives.diffusion_pretraining import (
    DiffusionPretrainObjective,
    masked_blocks,
    repeat_unlikelihood,
    run_lengths,
)
from llada_cli.engine.objectives.losses import PretrainBatch
from llada_cli.engine.objectives.masking import apply_mask, mask_probability, sample_mask
from tests.engine.objectives.helpers import (
    EOS,
    EPS,
    MASK,
    VOCAB,
    ConstantModel,
    StubCrossEntropy,
    clean_ids,
    monte_carlo_mean,
    tiny_model,
    token_ce,
)


def diffusion(**kwargs) -> DiffusionPretrainObjective:
    kwargs.setdefault("variable_length_prob", 0.0)
    return DiffusionPretrainObjective(mask_id=MASK, eos_id=EOS, **kwargs)


# -- diffusion pretraining ---------------------------------------------------------------------------


def test_iid_t_loss_equals_hand_computation_with_same_draws():
    model = tiny_model(causal=False)
    x0 = clean_ids(3, 12)
    out = diffusion()(model, PretrainBatch(x0), torch.Generator().manual_seed(5), progress=0.0)

    generator = torch.Generator().manual_seed(5)
    t = torch.rand(3, generator=generator)
    p = (1 - EPS) * t + EPS
    masked = sample_mask(torch.ones_like(x0, dtype=torch.bool), p, generator)
    with torch.no_grad():
        ce = token_ce(model(apply_mask(x0, masked, MASK)), x0)
    expected = (ce * masked / p[:, None]).sum() / x0.numel()  # section 2: / p_b, / non-pad tokens
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.tokens == 36
    assert float(out.metrics["mask_rate"]) == pytest.approx(masked.float().mean().item())
    assert "block_size" not in out.metrics


def test_iid_t_loss_by_hand_with_constant_logits():
    model = ConstantModel()
    x0 = clean_ids(2, 10)
    out = diffusion()(model, PretrainBatch(x0), torch.Generator().manual_seed(1), progress=0.0)
    generator = torch.Generator().manual_seed(1)
    p = mask_probability(torch.rand(2, generator=generator), "linear", EPS)
    masked_per_row = (model.inputs[0] == MASK).sum(dim=1)
    # loss = log V * sum_b m_b / p_b / (B L)
    expected = math.log(VOCAB) * (masked_per_row / p).sum().item() / 20
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)


def test_normalized_loss_is_the_weighted_mean_cross_entropy():
    out = diffusion(normalized_loss=True, time_weighted_loss=True, noise_schedule="cosine")(
        ConstantModel(), PretrainBatch(clean_ids(4, 16)), torch.Generator().manual_seed(2), 0.0
    )
    # sum(w CE) / sum(w) with every CE = log V
    assert out.loss.item() == pytest.approx(math.log(VOCAB), rel=1e-6)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_time_weight_comes_from_the_t_that_drew_the_mask(schedule):
    """One long row: the observed mask rate reveals p, hence t; the applied weight must be w(that t).

    A weight from an independently drawn t would miss this by far on most of the seeds.
    """
    objective = diffusion(time_weighted_loss=True, noise_schedule=schedule)
    checked = 0
    for seed in range(12):
        out = objective(
            ConstantModel(), PretrainBatch(clean_ids(1, 20000)), torch.Generator().manual_seed(seed), 0
        )
        rate = float(out.metrics["mask_rate"])
        if not 0.05 < rate < 0.95:
            continue
        applied = out.loss.item() / (math.log(VOCAB) * rate)  # loss = log V * w * m / L
        if schedule == "cosine":
            t = 2 / math.pi * math.asin(math.sqrt(rate))  # invert p = sin^2(pi t / 2)
            expected = math.pi / math.tan(math.pi * t / 2)
        else:
            expected = 1 / rate
        assert applied == pytest.approx(expected, rel=0.1)
        checked += 1
    assert checked >= 6


def test_block_curriculum_in_its_stable_phase_is_exactly_iid_t():
    model = tiny_model(causal=False)
    batch = PretrainBatch(clean_ids(2, 16))
    for doc_mask in (False, True):
        iid = diffusion(doc_attention_mask=doc_mask, variable_length_prob=0.5)
        wsd = DiffusionPretrainObjective(
            mask_id=MASK,
            eos_id=EOS,
            use_block_curriculum=True,
            total_steps=10,
            doc_attention_mask=doc_mask,
            variable_length_prob=0.5,
        )
        for seed in range(4):
            a = iid(model, batch, torch.Generator().manual_seed(seed), 0.5)
            b = wsd(model, batch, torch.Generator().manual_seed(seed), 0.5)
            assert torch.equal(a.loss, b.loss)
            assert b.metrics["block_size"] == 16


def test_the_block_curriculum_reports_its_block_size():
    objective = DiffusionPretrainObjective(
        mask_id=MASK, eos_id=EOS, use_block_curriculum=True, total_steps=10, variable_length_prob=0
    )
    model = ConstantModel()
    # L = 16: defaults up (1, 4, 16), down (8,); 10 steps: warmup 0-2, stable 3-7, decay 8-9
    for step, block in ((0, 1), (1, 4), (2, 16), (5, 16), (8, 8), (9, 8)):
        out = objective(model, PretrainBatch(clean_ids(2, 16)), torch.Generator().manual_seed(0), step / 10)
        assert out.metrics["block_size"] == block
        assert model.inputs[-1].shape[1] == (16 if block == 16 else 32)  # BDLM sees [x_t ; x0]


def test_diffusion_loss_with_doc_mask_and_eos_padded_rows_is_finite():
    model = tiny_model(causal=False)
    x0 = clean_ids(3, 16)
    x0[0, 6:] = EOS  # a short document, then EOS padding to the end of the row
    x0[1, :] = EOS  # nothing but EOS
    x0[2, 3] = EOS
    for schedule, progress in (("iid_t", 0.0), ("wsd", 0.0), ("wsd", 0.1), ("wsd", 0.95)):
        objective = DiffusionPretrainObjective(
            mask_id=MASK, eos_id=EOS, mask_schedule=schedule, doc_attention_mask=True, variable_length_prob=0
        )
        model.zero_grad()
        out = objective(model, PretrainBatch(x0), torch.Generator().manual_seed(0), progress)
        out.loss.backward()
        assert torch.isfinite(out.loss)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_variable_length_cuts_the_batch_to_a_uniform_length():
    generator = torch.Generator().manual_seed(0)
    x0 = clean_ids(2, 8)
    always = diffusion(variable_length_prob=1.0)
    lengths = torch.tensor([always.maybe_shorten(x0, generator).shape[1] for _ in range(4000)])
    counts = torch.bincount(lengths, minlength=9)[1:].float() / 4000
    assert torch.allclose(counts, torch.full((8,), 1 / 8), atol=0.02)  # U{1..8}
    sometimes = diffusion(variable_length_prob=0.25)
    cut = sum(sometimes.maybe_shorten(x0, generator).shape[1] < 8 for _ in range(4000)) / 4000
    assert cut == pytest.approx(0.25 * 7 / 8, abs=0.02)  # a cut to the full length changes nothing
    assert diffusion().maybe_shorten(x0, generator) is x0


def test_a_shortened_batch_reports_its_own_tokens():
    model = ConstantModel()
    out = diffusion(variable_length_prob=1.0)(model, PretrainBatch(clean_ids(2, 8)), torch.Generator(), 0.0)
    assert out.tokens == model.inputs[0].numel() == 2 * model.inputs[0].shape[1]


# -- unbiased estimators (docs/algorithms.md 2, 3, 6, 10) ----------------------------------------------------


@pytest.mark.parametrize(
    "objective",
    [
        DiffusionPretrainObjective(mask_id=1, eos_id=7, variable_length_prob=0.0),
        DiffusionPretrainObjective(mask_id=1, eos_id=7, noise_schedule="cosine", time_weighted_loss=True),
        DiffusionPretrainObjective(mask_id=1, eos_id=7, variable_length_prob=1.0),  # often cut to 1 token
        DiffusionPretrainObjective(
            mask_id=1, eos_id=7, use_block_curriculum=True, wsd_block_sizes_up=(4,), total_steps=100
        ),
        DiffusionPretrainObjective(mask_id=1, eos_id=7, mask_schedule="wsd", total_steps=100),
        DiffusionPretrainObjective(
            mask_id=1,
            eos_id=7,
            use_block_curriculum=True,
            block_curriculum_form="masked_blocks",
            wsd_block_sizes_up=(4,),
            total_steps=100,
        ),
    ],
    ids=[
        "iid_t",
        "cosine-time-weighted",
        "variable-length",
        "bdlm-blocks-of-4",
        "wsd-ratio",
        "masked-blocks",
    ],
)
def test_pretraining_loss_is_an_unbiased_estimate(objective):
    # the stub's cross entropy is 2 at every position: the expected loss must be exactly 2
    batch = PretrainBatch(torch.zeros(64, 64, dtype=torch.long))
    assert monte_carlo_mean(objective, batch, draws=400, progress=0.1) == pytest.approx(2.0, rel=0.01)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_validation_reports_the_true_elbo_of_the_schedule(schedule):
    # CE = f(p) = p^2 at every masked position: the ELBO is the integral of f over p in [0, 1] = 1/3
    # (with 1/p weights under the cosine schedule the training loss would give 0.42 instead).
    objective = DiffusionPretrainObjective(mask_id=1, eos_id=7, noise_schedule=schedule).for_validation()
    model = StubCrossEntropy(lambda frac: frac**2)
    batch = PretrainBatch(torch.zeros(64, 2048, dtype=torch.long))
    generator = torch.Generator().manual_seed(0)
    mean = sum(objective(model, batch, generator, 1.0).loss.item() for _ in range(30)) / 30
    assert mean == pytest.approx(1 / 3, rel=0.01)


def test_doc_mask_never_masks_eos():
    objective = diffusion(doc_attention_mask=True)
    model = ConstantModel()
    ids = clean_ids(64, 32)
    ids[:, ::5] = EOS
    objective(model, PretrainBatch(ids), torch.Generator().manual_seed(0), 0.5)
    noisy = model.inputs[0]
    assert (noisy[ids == EOS] == EOS).all() and (noisy == MASK).any()


# -- Nano-LLaDA's schedules and terms ---------------------------------------------------------------


def test_run_lengths_count_identical_tokens_ending_at_each_position():
    ids = torch.tensor([[5, 5, 5, 2, 2, 9]])
    assert run_lengths(ids).tolist() == [[1, 2, 3, 1, 2, 1]]


def test_repeat_unlikelihood_by_hand():
    # x0 = 3 3 4 5: masked positions 1, 2, 3. Position 1 repeats the text (3 3): never penalised.
    # Position 2: the text says 4, repeating 3 would make a run of 3 (>= 2): -log(1 - p(3)).
    # Position 3: the text says 5, repeating 4 would make a run of 2: -log(1 - p(4)).
    x0 = torch.tensor([[3, 3, 4, 5]])
    masked = torch.tensor([[False, True, True, True]])
    logits = torch.zeros(3, 8)
    logits[1, 3] = math.log(3.0)  # p(3) = 3 / 10 at position 2
    logits[2, 4] = math.log(8.0)  # p(4) = 8 / 15 at position 3
    expected = (-math.log(1 - 3 / 10) - math.log(1 - 8 / 15)) / 2
    assert repeat_unlikelihood(logits, x0, masked, min_run=2, eos_id=0).item() == pytest.approx(expected)
    # min_run 3: only position 2 (a run of 3 tokens) counts
    assert repeat_unlikelihood(logits, x0, masked, min_run=3, eos_id=0).item() == pytest.approx(
        -math.log(1 - 3 / 10)
    )


def test_repeat_penalty_adds_its_ramped_weight_times_the_term():
    model = tiny_model(causal=False)
    batch = PretrainBatch(torch.tensor([[3, 3, 4, 5, 5, 6, 7, 7]] * 2))
    plain = diffusion(variable_length_prob=0.0)
    penalised = replace(
        plain, repeat_penalty_weight=0.5, repeat_penalty_delay_steps=2, repeat_penalty_warmup_steps=4
    )
    penalised = replace(penalised, total_steps=10)
    for step, weight in ((1, 0.0), (3, 0.25), (9, 0.5)):
        a = plain(model, batch, torch.Generator().manual_seed(step), step / 10)
        b = penalised(model, batch, torch.Generator().manual_seed(step), step / 10)
        term = b.metrics.get("repeat_unlikelihood", torch.tensor(0.0))
        assert b.loss.item() == pytest.approx(a.loss.item() + weight * float(term), rel=1e-5)


def test_wsd_mask_ratio_sets_every_rows_mask_rate_and_is_logged():
    objective = diffusion(mask_schedule="wsd", total_steps=100, variable_length_prob=0.0)
    batch = PretrainBatch(clean_ids(64, 64))
    for step, ratio in ((0, 0.15 + 0.85 / 20), (50, 1.0), (99, 0.15)):
        out = objective(ConstantModel(), batch, torch.Generator().manual_seed(step), step / 100)
        p = (1 - EPS) * ratio + EPS
        assert float(out.metrics["mask_ratio"]) == pytest.approx(p)
        assert float(out.metrics["mask_rate"]) == pytest.approx(p, abs=0.02)


def test_masked_blocks_masks_whole_blocks():
    maskable = torch.ones(3, 16, dtype=torch.bool)
    masked, weight = masked_blocks(
        maskable, torch.tensor([0.5, 0.01, 1.0]), 4, torch.Generator().manual_seed(0)
    )
    per_block = masked.view(3, 4, 4)
    assert (per_block.all(dim=2) | ~per_block.any(dim=2)).all()  # a block is masked whole or not at all
    assert per_block.all(dim=2).sum(dim=1).tolist() == [2, 1, 4]  # round(4 * ratio), at least one
    assert weight[:, 0].tolist() == [2.0, 4.0, 1.0]  # blocks / chosen
