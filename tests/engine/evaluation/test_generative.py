"""Generative perplexity and unigram entropy (evaluation/generative.py) by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from llada_cli.engine.errors import UsageError
from llada_cli.engine.evaluation.generative import generative_report, unigram_entropy
from tests.engine.objectives.helpers import EOS, tiny_model


def test_unigram_entropy_by_hand():
    assert unigram_entropy([1, 1, 2, 2]) == pytest.approx(math.log(2))
    assert unigram_entropy([7, 7, 7]) == 0.0
    assert unigram_entropy([1, 2, 3, 1]) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))


def test_the_reference_perplexity_is_its_exact_likelihood_of_the_retokenized_texts():
    # the run's tokens are letters; the reference reads each letter as the id of its position in the alphabet
    run = SimpleNamespace(decode=lambda ids: "".join(chr(96 + i) for i in ids))
    judge = SimpleNamespace(eos_id=EOS, encode=lambda text: [ord(c) - 96 for c in text])
    model = tiny_model(causal=True).eval()
    samples = [[1, 2, 3], [4, 4]]
    report = generative_report(samples, run, model, judge)
    with torch.no_grad():
        nats = 0.0
        for ids in samples:
            row = torch.tensor([[EOS, *ids]])
            logp = model(row[:, :-1]).float().log_softmax(dim=-1)
            nats -= sum(logp[0, i, t].item() for i, t in enumerate(ids))
    assert report.tokens == 5 and report.samples == 2
    assert report.perplexity == pytest.approx(math.exp(nats / 5), rel=1e-4)
    assert report.unigram_entropy == pytest.approx((math.log(3) + 0.0) / 2)
    with pytest.raises(UsageError, match="every sample was empty"):
        generative_report([[]], run, model, judge)
