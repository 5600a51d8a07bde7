"""Evaluation (evaluation/evaluate.py): `llada eval`'s long waits report progress, chunking them does not
change the scores, and the ELBO of an answer is an unbiased estimate."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from llada_cli import api
from llada_cli.engine.evaluation.evaluate import (
    ar_likelihood,
    benchmark_accuracy,
    diffusion_answer_nll,
    diffusion_likelihood,
)
from tests.engine.objectives.helpers import StubCrossEntropy


def test_benchmark_reports_progress_per_chunk_and_scores_every_question():
    questions = [
        SimpleNamespace(question=f"q{i}", answer=f"a{i}", split="seen", lang="en") for i in range(40)
    ]
    seen: list[tuple[int, int]] = []
    asked: list[int] = []

    def answer(prompts: list[str]) -> list[str]:
        asked.append(len(prompts))
        return [p.replace("q", "a") if int(p[1:]) % 2 == 0 else "wrong" for p in prompts]

    report = benchmark_accuracy(
        questions, answer, lambda reply, q: reply == q.answer, lambda done, total: seen.append((done, total))
    )
    assert asked == [16, 16, 8] and seen == [(16, 40), (32, 40), (40, 40)]
    assert report.accuracy("seen") == 0.5 and report.total["seen/en"] == 40


def test_likelihoods_report_rows_done(pipeline):
    rows = torch.randint(3, 100, (5, 16), generator=torch.Generator().manual_seed(0))
    ar = api.load("ar-base", home=pipeline.home, device="cpu")
    seen: list[tuple[int, int]] = []
    ar_likelihood(ar.network, rows, batch_size=2, on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]
    dlm = api.load("dlm-base", home=pipeline.home, device="cpu")
    seen.clear()
    mask_id = dlm.tokenizer.mask_id
    diffusion_likelihood(
        dlm.network, rows, mask_id, 2, on_progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(i, 5) for i in range(1, 6)]


def test_eval_elbo_is_an_unbiased_estimate():
    model = StubCrossEntropy(lambda frac: torch.full_like(frac, 2.0))
    nll = diffusion_answer_nll(model, [0, 0], [0] * 6, 1, 512, torch.Generator().manual_seed(0))
    assert nll / 6 == pytest.approx(2.0, rel=0.01)
