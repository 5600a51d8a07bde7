"""Block-causal decoding for block-diffusion runs (sampling/cache.py): what training saw, and an exact
KV cache."""

from __future__ import annotations

import pytest
import torch

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.objectives.losses import bdlm_logits
from llada_cli.engine.objectives.masking import equal_blocks
from llada_cli.engine.sampling.cache import BlockForward, Rows
from llada_cli.engine.sampling.common import left_pad
from llada_cli.engine.sampling.diffusion import DiffusionSettings, generate_diffusion

MASK, BLOCK = 31, 4


@pytest.fixture(scope="module", params=[False, True], ids=["unshifted", "logit-shift"])
def model(request) -> Transformer:
    """Under the logit shift a block's first slot reads the (final) column before the block."""
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, seq_len=64
    )
    return Transformer(
        config.__class__(**{**config.to_dict(), "causal": False, "logit_shift": request.param})
    ).eval()


def rows_of(prompts: list[list[int]], answer: list[list[int]]) -> tuple[Rows, int]:
    padded = left_pad(prompts, pad_id=MASK, device=torch.device("cpu"))
    x = torch.cat((padded.ids, torch.tensor(answer)), dim=1)
    length = x.shape[1]
    return Rows(
        torch.arange(len(prompts)), x, padded.positions(length), padded.key_valid(length)
    ), padded.ids.shape[1]


@torch.no_grad()
def test_block_causal_logits_are_those_of_the_training_mask_for_the_same_noisy_block(model):
    x0 = torch.randint(0, MASK, (1, 12))
    xt = x0.clone()
    masked = torch.zeros_like(x0, dtype=torch.bool)
    masked[0, [8, 10, 11]] = True  # block 2 (columns 8-11) is being denoised
    xt[masked] = MASK
    trained = bdlm_logits(model, x0, xt, masked, equal_blocks(12, BLOCK), doc_ids=None)

    # decoding: the prompt is blocks 0-1, clean; the current block holds x_t's block 2
    rows, width = rows_of([x0[0, :8].tolist()], [xt[0, 8:].tolist()])
    decoded = BlockForward(model, "none", 0.0, MASK, width, block_length=BLOCK).logits(rows, 8, 12, 12)

    torch.testing.assert_close(decoded[0, [0, 2, 3]], trained, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_the_block_causal_cache_gives_the_logits_of_running_everything(model):
    prompts = [[3, 4, 5, 6, 7, 8, 9], [10, 11]]  # left padding: the short prompt's keys are masked
    answer = torch.randint(0, MASK, (2, 12))
    answer[:, 9:] = MASK  # the last block is still being decoded
    rows, width = rows_of(prompts, answer.tolist())
    cached = BlockForward(model, "prefix", 0.0, MASK, width, block_length=BLOCK)
    everything = BlockForward(model, "none", 0.0, MASK, width, block_length=BLOCK)
    for start in range(width, width + 12, BLOCK):
        cached.start_block()
        torch.testing.assert_close(
            cached.logits(rows, start, start + BLOCK, start + BLOCK),
            everything.logits(rows, start, start + BLOCK, start + BLOCK),
            atol=1e-5,
            rtol=1e-5,
        )


@pytest.mark.parametrize(
    "options", [{}, {"exact": True}, {"threshold": 0.5}], ids=["default", "exact", "t0.5"]
)
def test_cached_block_causal_decoding_answers_token_for_token_as_uncached(model, options):
    prompts = [[3, 4, 5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
    common = dict(
        gen_length=16, block_length=BLOCK, method="semi_ar_origin", attention="block_causal", **options
    )
    eos = {0}
    plain = generate_diffusion(model, prompts, DiffusionSettings(cache="none", **common), MASK, eos)
    cached = generate_diffusion(model, prompts, DiffusionSettings(cache="prefix", **common), MASK, eos)
    assert [g.token_ids for g in cached] == [g.token_ids for g in plain]
    assert [g.steps for g in cached] == [g.steps for g in plain]


def test_semi_ar_origin_never_shows_the_current_block_a_later_one(model):
    """Bidirectional: a block decoded with later masked blocks present (padding) or absent (origin)
    sees different keys; in one block (fixed_length) both are the same run."""
    prompts = [[3, 4, 5, 6]]
    one_block = dict(gen_length=8, exact=True)
    origin = generate_diffusion(
        model, prompts, DiffusionSettings(method="semi_ar_origin", **one_block), MASK, {0}
    )
    fixed = generate_diffusion(
        model, prompts, DiffusionSettings(method="fixed_length", **one_block), MASK, {0}
    )
    assert origin[0].token_ids == fixed[0].token_ids
    forward = BlockForward(model, "none", 0.0, MASK, 4)
    rows, _ = rows_of(prompts, [[MASK] * 8])
    seen_with_future = forward.logits(rows, 4, 8)
    seen_alone = forward.logits(rows, 4, 8, visible_end=8)
    assert not torch.allclose(seen_with_future, seen_alone)
