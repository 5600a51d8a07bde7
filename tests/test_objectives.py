"""The training losses against hand computations with the same random draws (docs/algorithms.md 2-6)."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.evaluation.evaluate import diffusion_answer_nll
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.objectives import losses
from llada_cli.engine.objectives.ar import ARPretrainObjective, ARSFTObjective
from llada_cli.engine.objectives.diffusion_pretraining import (
    DiffusionPretrainObjective,
    masked_blocks,
    repeat_unlikelihood,
    run_lengths,
)
from llada_cli.engine.objectives.diffusion_sft import DiffusionSFTObjective
from llada_cli.engine.objectives.losses import PretrainBatch, SFTBatch, bdlm_logits, plain_cross_entropy
from llada_cli.engine.objectives.masking import apply_mask, mask_probability, sample_mask

VOCAB, MASK, EOS = 64, 63, 0
EPS = 1e-3


def tiny_model(causal: bool, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        seq_len=32,
        causal=causal,
    )
    return Transformer(config)


class ConstantModel(nn.Module):
    """Uniform logits everywhere, so every cross entropy is exactly log(VOCAB); records its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig(vocab_size=VOCAB, hidden_size=4, num_attention_heads=1, causal=False)
        self.lm_head = nn.Linear(4, VOCAB, bias=False)
        nn.init.zeros_(self.lm_head.weight)
        self.inputs: list[torch.Tensor] = []
        self.attn_masks: list[torch.Tensor | None] = []

    def hidden_states(self, input_ids, positions, attn_mask, past):
        self.inputs.append(input_ids)
        self.attn_masks.append(attn_mask)
        return torch.zeros(*input_ids.shape, 4), []


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


def clean_ids(rows: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, MASK, (rows, length), generator=torch.Generator().manual_seed(seed))


def token_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-position cross entropy from full logits, written out: -log softmax at the target."""
    return -logits.float().log_softmax(dim=-1).gather(-1, targets[..., None])[..., 0]


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


def bdlm_cross_entropy(model, x0, xt, masked, block_size, doc_ids):
    return F.cross_entropy(
        bdlm_logits(model, x0, xt, masked, block_size, doc_ids), x0[masked], reduction="none"
    )


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


# -- autoregressive -----------------------------------------------------------------------------------


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


def sft_batch() -> SFTBatch:
    ids = clean_ids(2, 10)
    response = torch.zeros(2, 10, dtype=torch.bool)
    response[0, 4:7] = True  # prompt 0..3, response 4..6, EOS padding 7..9
    response[1, 3:10] = True  # no padding
    pad = torch.zeros(2, 10, dtype=torch.bool)
    pad[0, 7:] = True
    ids[0, 7:] = EOS
    return SFTBatch(ids, response, pad)


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


# -- diffusion SFT ------------------------------------------------------------------------------------


def sft(**kwargs) -> DiffusionSFTObjective:
    return DiffusionSFTObjective(mask_id=MASK, **kwargs)


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


# -- unbiased estimators (docs/algorithms.md 2, 3, 6, 10) ----------------------------------------------------


class StubCrossEntropy(nn.Module):
    """Two tokens (0 = every clean token, 1 = mask): at every position the cross entropy of token 0 is
    f(fraction of the row that is masked), so an objective's expected loss can be worked out by hand."""

    def __init__(self, f) -> None:
        super().__init__()
        self.f = f
        self.config = ModelConfig(vocab_size=2, hidden_size=2, num_attention_heads=1, causal=False)
        self.lm_head = nn.Identity()

    def hidden_states(self, input_ids, positions, attn_mask, past):
        rows, length = input_ids.shape
        ce = self.f((input_ids == 1).float().mean(dim=1)).clamp(min=1e-6)
        other = torch.log(torch.expm1(ce))  # log(1 + e^other) = ce for the target logit 0
        logits = torch.stack((torch.zeros_like(other), other), dim=-1)
        return logits[:, None, :].expand(rows, length, 2), []

    def forward(self, input_ids, positions=None, attn_mask=None):
        return self.hidden_states(input_ids, positions, attn_mask, None)[0]

    def parameters(self, recurse: bool = True):
        yield torch.zeros(1)


def monte_carlo_mean(objective, batch, draws: int, progress: float = 0.5) -> float:
    generator = torch.Generator().manual_seed(0)
    model = StubCrossEntropy(lambda frac: torch.full_like(frac, 2.0))
    return sum(objective(model, batch, generator, progress).loss.item() for _ in range(draws)) / draws


def sft_rows(rows: int, length: int, prompt: int) -> SFTBatch:
    answer = torch.arange(length)[None, :].expand(rows, -1) >= prompt
    return SFTBatch(torch.zeros(rows, length, dtype=torch.long), answer, torch.zeros_like(answer))


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


def test_eval_elbo_is_an_unbiased_estimate():
    model = StubCrossEntropy(lambda frac: torch.full_like(frac, 2.0))
    nll = diffusion_answer_nll(model, [0, 0], [0] * 6, 1, 512, torch.Generator().manual_seed(0))
    assert nll / 6 == pytest.approx(2.0, rel=0.01)


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
