"""AR sampling: the KV cache against full recomputation, batching, stop tokens, the sampling filters."""

from __future__ import annotations

import math

import pytest
import torch

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.errors import UsageError
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.sampling.ar import (
    ARSettings,
    generate_ar,
    penalize_repeats,
    sample_filtered,
    seen_tokens,
)
from llada_cli.engine.sampling.common import left_pad
from llada_cli.engine.sampling.settings import resolve_ar_settings

PROMPTS = [[5, 17, 3, 9, 30, 2, 11], [40, 8]]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> Transformer:
    """A tiny causal model with weights large enough that its logits are well separated."""
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, seq_len=64
    )
    net = Transformer(config)
    with torch.no_grad():
        for name, weight in net.named_parameters():
            if weight.dim() == 2:
                weight.normal_(0, 0.15 if "proj" in name else 1.0)
    return net.eval()


@torch.no_grad()
def greedy_without_cache(model: Transformer, prompt: list[int], new_tokens: int) -> list[int]:
    """The slow, obviously right loop: run the whole sequence again for every token."""
    x = torch.tensor([prompt])
    for _ in range(new_tokens):
        next_token = model(x)[0, -1].argmax()
        x = torch.cat((x, next_token.view(1, 1)), dim=1)
    return x[0, len(prompt) :].tolist()


def generate(model, prompts, stop=(), seed=None, **settings):
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return generate_ar(model, prompts, ARSettings(**settings), set(stop), generator)


def test_cached_greedy_equals_full_recomputation(model):
    for prompt in PROMPTS:
        (got,) = generate(model, [prompt], max_new_tokens=20)
        assert got.token_ids == greedy_without_cache(model, prompt, 20)
        assert got.steps == got.forward_passes == 20 and not got.finished


def test_outputs_are_not_degenerate(model):
    tokens = generate(model, [PROMPTS[0]], max_new_tokens=20)[0].token_ids
    assert len(set(tokens)) > 3


@pytest.mark.parametrize(
    "settings",
    [dict(max_new_tokens=16), dict(max_new_tokens=16, repetition_penalty=1.5)],
)
def test_batch_equals_each_prompt_alone(model, settings):
    together = generate(model, PROMPTS, **settings)
    alone = [generate(model, [prompt], **settings)[0] for prompt in PROMPTS]
    assert [g.token_ids for g in together] == [g.token_ids for g in alone]


def test_stop_token_ends_a_row_and_is_excluded(model):
    tokens = generate(model, [PROMPTS[0]], max_new_tokens=20)[0].token_ids
    cut = next(i for i in range(1, 20) if tokens[i] not in tokens[:i])
    (got,) = generate(model, [PROMPTS[0]], stop=(tokens[cut],), max_new_tokens=20)
    assert got.token_ids == tokens[:cut]
    assert got.finished and got.steps == got.forward_passes == cut + 1


def test_rows_stop_independently(model):
    first = generate(model, [PROMPTS[0]], max_new_tokens=12)[0].token_ids
    second = generate(model, [PROMPTS[1]], max_new_tokens=12)[0].token_ids
    stop = first[3]
    together = generate(model, PROMPTS, stop=(stop,), max_new_tokens=12)
    for got, alone in zip(together, (first, second), strict=True):
        expected = alone[: alone.index(stop)] if stop in alone else alone
        assert got.token_ids == expected
        assert got.finished == (stop in alone)


def test_top_k_one_and_a_tiny_nucleus_are_greedy(model):
    greedy = generate(model, PROMPTS, max_new_tokens=12)
    top_k = generate(model, PROMPTS, max_new_tokens=12, temperature=1.5, top_k=1, seed=0)
    nucleus = generate(model, PROMPTS, max_new_tokens=12, temperature=1.5, top_p=1e-6, seed=0)
    assert [g.token_ids for g in top_k] == [g.token_ids for g in nucleus] == [g.token_ids for g in greedy]


def test_seeded_sampling_is_reproducible(model):
    settings = dict(max_new_tokens=12, temperature=1.0, top_p=0.9)
    first = generate(model, PROMPTS, seed=5, **settings)
    assert [g.token_ids for g in generate(model, PROMPTS, seed=5, **settings)] == [g.token_ids for g in first]


@pytest.mark.parametrize(
    ("top_k", "top_p", "expected"),
    [
        (0, 1.0, [0.5, 0.3, 0.2]),
        (2, 1.0, [0.625, 0.375, 0.0]),  # renormalised over the two best
        (0, 0.6, [0.625, 0.375, 0.0]),  # 0.5 < 0.6: the second token is still needed
        (0, 0.5, [1.0, 0.0, 0.0]),  # the first token alone reaches 0.5
    ],
)
def test_filtered_sampling_frequencies(top_k, top_p, expected):
    logits = torch.tensor([[math.log(0.2), math.log(0.5), math.log(0.3)]]).repeat(20000, 1)
    draws = sample_filtered(logits, top_k, top_p, torch.Generator().manual_seed(0))
    frequencies = torch.bincount(draws, minlength=3).double() / len(draws)
    by_probability = frequencies[[1, 2, 0]]  # tokens 1, 2, 0 carry 0.5, 0.3, 0.2
    assert by_probability.tolist() == pytest.approx(expected, abs=0.015)


def test_repetition_penalty_hand_case():
    logits = torch.tensor([[2.0, -1.0, 3.0]])
    seen = torch.tensor([[True, True, False]])
    assert penalize_repeats(logits, seen, 2.0).tolist() == [[1.0, -2.0, 3.0]]


def test_seen_tokens_skip_padding():
    seen = seen_tokens(left_pad([[5, 6], [7]], pad_id=0, device=torch.device("cpu")), vocab_size=8)
    assert seen.nonzero().tolist() == [[0, 5], [0, 6], [1, 7]]


def test_a_prompt_longer_than_the_context_is_refused(model):
    with pytest.raises(UsageError, match="the prompt fills the model's whole context"):
        generate(model, [[1] * 70], max_new_tokens=4)


def test_ar_never_decodes_past_its_context(model):
    with pytest.raises(UsageError, match="`max_new_tokens` 8 does not fit: the prompt leaves 4 tokens"):
        generate(model, [[1] * 60], max_new_tokens=8)
    assert resolve_ar_settings(ARSettings(), room=4).max_new_tokens == 4
    assert resolve_ar_settings(ARSettings(), room=4000).max_new_tokens == 128


def test_empty_prompt_is_refused(model):
    with pytest.raises(UsageError, match="a prompt is empty"):
        generate(model, [[]], max_new_tokens=4)
