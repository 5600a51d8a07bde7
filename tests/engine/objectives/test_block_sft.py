"""Block-diffusion SFT and the CAP term (objectives/diffusion_sft.py, docs/algorithms.md section 6):
the block form's loss against the logits block-causal decoding computes, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from llada_cli.engine.errors import UsageError
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.objective_configs import DiffusionSFTConfig
from llada_cli.engine.objectives.diffusion_sft import cap_entropy
from llada_cli.engine.objectives.masking import apply_mask, sample_mask
from llada_cli.engine.sampling.cache import BlockForward, Rows
from tests.engine.objectives.helpers import EPS, MASK, ConstantModel, sft, sft_batch, tiny_model, token_ce


@pytest.fixture(params=[False, True], ids=["unshifted", "logit-shift"])
def model(request) -> Transformer:
    return tiny_model(causal=False, logit_shift=request.param).eval()


def test_blocks_are_counted_from_each_rows_answer_start():
    block, blocks = sft(sft_form="block", block_size=2).answer_blocks(sft_batch().response_mask)
    # row 0's answer starts at column 4, row 1's at 3; the prompt's blocks count back from there
    assert block.tolist() == [[-2, -2, -1, -1, 0, 0, 1, 1, 2, 2], [-2, -1, -1, 0, 0, 1, 1, 2, 2, 3]]
    assert blocks == 5
    assert sft(sft_form="full").answer_blocks(sft_batch().response_mask) == (None, 1)


def decoded_logits(model: Transformer, x0: torch.Tensor, xt: torch.Tensor, start: int, size: int, k: int):
    """What block-causal decoding computes for block k of the answer: the prompt and blocks < k
    final (clean), block k as x_t has it, nothing after it (sampling/cache.py, not the objective)."""
    begin, end = start + k * size, min(start + (k + 1) * size, x0.shape[0])
    ids = torch.cat((x0[:begin], xt[begin:end]))[None]
    rows = Rows(torch.arange(1), ids, torch.arange(end), None)
    forward = BlockForward(model, "none", 0.0, MASK, start, block_length=size)
    return forward.logits(rows, begin, end, end)[0]


@pytest.mark.parametrize("policy", ["eos", "capped"])
def test_block_sft_loss_is_the_sum_of_each_blocks_elbo_as_decoding_sees_it(model, policy):
    batch, size = sft_batch(), 2
    objective = sft(sft_form="block", block_size=size, pad_policy=policy)
    with torch.no_grad():
        out = objective(model, batch, torch.Generator().manual_seed(5), 0.0)
    # the same draws by hand: a t per (row, block), the mask from each token's block's p
    generator = torch.Generator().manual_seed(5)
    p = (1 - EPS) * torch.rand(2, 5, generator=generator) + EPS
    block, _ = objective.answer_blocks(batch.response_mask)
    p_token = p.gather(1, block.clamp(min=0))
    answer = batch.response_mask | batch.pad_mask
    masked = sample_mask(answer, p_token, generator)
    xt = apply_mask(batch.input_ids, masked, MASK)
    weight = objective.token_weights(batch.pad_mask)
    total = 0.0
    with torch.no_grad():
        for row in range(2):
            start = int(batch.response_mask[row].int().argmax())
            answer_len = float((weight[row] * answer[row]).sum())
            for k in range(math.ceil((10 - start) / size)):
                logits = decoded_logits(model, batch.input_ids[row], xt[row], start, size, k)
                columns = torch.arange(start + k * size, min(start + (k + 1) * size, 10))
                ce = token_ce(logits, batch.input_ids[row, columns])
                chosen = masked[row, columns]
                w = weight[row, columns] / p_token[row, columns] / answer_len
                total += float((ce * w)[chosen].sum())
    assert masked.any(), "the draws must mask something for the comparison to mean anything"
    assert out.loss.item() == pytest.approx(total / 2, rel=1e-5)


def test_cap_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 1.0, 0.0]])
    targets = torch.tensor([0, 0, 1])  # right, wrong, right (a tie: argmax picks the first, 0)
    e2 = math.exp(2)
    p = [e2 / (e2 + 2), 1 / (e2 + 2), 1 / (e2 + 2)]
    entropy = -sum(q * math.log(q) for q in p)
    assert cap_entropy(logits, targets, torch.ones(3)).item() == pytest.approx(entropy, rel=1e-6)
    # weighted as the SFT loss weighs each token; none right: 0
    weights = torch.tensor([0.5, 1.0, 1.0])
    assert cap_entropy(logits, targets, weights).item() == pytest.approx(entropy, rel=1e-6)
    assert cap_entropy(logits, torch.tensor([1, 0, 2]), torch.ones(3)).item() == 0.0


def test_cap_weight_adds_its_term_to_the_same_draws_and_validation_leaves_it_out(model):
    batch = sft_batch()
    with torch.no_grad():
        plain = sft(pad_policy="eos")(model, batch, torch.Generator().manual_seed(2), 0.0)
        cap = sft(pad_policy="eos", cap_weight=0.5)(model, batch, torch.Generator().manual_seed(2), 0.0)
    assert "cap_entropy" not in plain.metrics
    assert cap.loss.item() == pytest.approx(plain.loss.item() + 0.5 * float(cap.metrics["cap_entropy"]))
    assert sft(cap_weight=0.5).for_validation().cap_weight == 0.0


def test_cap_lowers_the_entropy_of_what_the_model_gets_right():
    model = tiny_model(causal=False)
    logits = model.lm_head(torch.randn(6, 32)).detach().requires_grad_()
    targets = logits.argmax(dim=-1)
    cap_entropy(logits, targets, torch.ones(6)).backward()
    stepped = logits - 1.0 * logits.grad
    assert cap_entropy(stepped, targets, torch.ones(6)) < cap_entropy(logits, targets, torch.ones(6))
    assert (stepped.argmax(dim=-1) == targets).all()  # sharper, same answer


@pytest.mark.parametrize(
    ("given", "base_block", "form", "size"),
    [
        ({}, None, "full", None),
        ({}, 16, "block", 16),  # a block-diffusion base: block SFT in its block size
        ({"sft_form": "full"}, 16, "full", None),
        ({"sft_form": "block"}, None, "block", 8),
        ({"sft_form": "block", "block_size": 4}, 16, "block", 4),
        ({"block_size": 4}, 16, "block", 4),
    ],
)
def test_the_form_follows_the_base_unless_told(given, base_block, form, size):
    resolved = DiffusionSFTConfig(**given).with_form_of(base_block)
    assert (resolved.sft_form, resolved.block_size) == (form, size)
    assert resolved.decoding_block(100, 64) == (size if form == "block" else None)


def test_a_block_size_without_the_block_form_is_refused():
    with pytest.raises(UsageError, match="block_size` applies only with `sft_form` block"):
        DiffusionSFTConfig(block_size=4).with_form_of(None)
    with pytest.raises(UsageError, match="block_size` applies only with `sft_form` block"):
        DiffusionSFTConfig(sft_form="full", block_size=4).check_applies()


def test_complementary_masking_in_block_form_twins_each_row_with_the_tokens_left_clean():
    model = ConstantModel()
    batch = sft_batch()
    sft(sft_form="block", block_size=2, complementary_masking=True, pad_policy="eos")(
        model, batch, torch.Generator().manual_seed(3), 0.0
    )
    seen = model.inputs[0][:, :10] == MASK  # the noisy half of [x_t ; x0]
    first, twin = seen[:2], seen[2:]
    answer = batch.response_mask | batch.pad_mask
    assert not (first & twin).any() and ((first | twin) == answer).all()
