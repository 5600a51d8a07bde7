"""Diffusion sampling of a logit-shifted model (docs/algorithms.md section 11): exact caches, the
column before a block, and the mask never committed."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.sampling.diffusion import DiffusionSettings, generate_diffusion

MASK = 47


@pytest.fixture(scope="module")
def shifted() -> Transformer:
    torch.manual_seed(3)
    config = ModelConfig(
        vocab_size=48, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, seq_len=64, causal=False
    )
    return Transformer(replace(config, logit_shift=True)).eval()


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_shifted_caches_are_exact_when_never_read(shifted: Transformer, cache: str) -> None:
    prompts = [[3, 4, 5, 6, 7], [8, 9]]
    settings = dict(gen_length=16, block_length=4, steps=4)
    plain = generate_diffusion(shifted, prompts, DiffusionSettings(**settings), MASK, set())
    cached = generate_diffusion(shifted, prompts, DiffusionSettings(cache=cache, **settings), MASK, set())
    assert [g.token_ids for g in cached] == [g.token_ids for g in plain]


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_a_shifted_block_reads_the_column_before_it_in_every_cached_step(
    shifted: Transformer, cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Later steps of a block do not run the column before it: its state comes from the block's
    first pass, so the first slot's logits never change within a block."""
    from llada_cli.engine.sampling import cache as cache_module

    first_slot = []
    original = cache_module.run_model

    def spy(model, ids, positions, past, mask, window, before=None):
        logits, kv, hidden = original(model, ids, positions, past, mask, window, before)
        first_slot.append((past is not None, logits[:, 0].clone()))
        return logits, kv, hidden

    monkeypatch.setattr(cache_module, "run_model", spy)
    settings = DiffusionSettings(gen_length=4, block_length=4, steps=4, cache=cache)
    generate_diffusion(shifted, [[3, 4, 5, 6, 7]], settings, MASK, set())
    assert [read for read, _ in first_slot] == [False, True, True, True]
    for _, logits in first_slot[1:]:
        torch.testing.assert_close(logits, first_slot[0][1])


class MaskLover(torch.nn.Module):
    """Logits whose largest is always <|mask|>'s, then token 5's."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig(vocab_size=48, hidden_size=2, num_attention_heads=1, causal=False)
        self.lm_head = torch.nn.Identity()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def hidden_states(self, ids, positions, attn_mask, past):
        logits = torch.zeros(*ids.shape, 48)
        logits[..., MASK], logits[..., 5] = 9.0, 3.0
        return logits, []


def test_the_mask_is_never_committed() -> None:
    model = MaskLover()
    for options in ({"exact": True}, {"threshold": 0.01}, {"threshold": 0.01, "edit_threshold": 0.0}):
        (got,) = generate_diffusion(
            model, [[3, 4]], DiffusionSettings(gen_length=8, block_length=8, **options), MASK, set()
        )
        assert got.token_ids == [5] * 8, options
