"""Dynamic batching (server/batcher.py): requests that arrive together decode as one batch, with the
answers they get alone; streamed pieces add up to the answer; an error reaches only its batch."""

from __future__ import annotations

import pytest

from llada_cli import api
from llada_cli.engine.errors import UsageError
from llada_cli.server.batcher import Batcher, Job

PROMPTS = ["Hello", "Who are you?", "What is the capital of Ninaria?"]


@pytest.mark.parametrize("run", ["ar-chat", "dlm-chat"])
def test_jobs_that_arrive_together_share_a_batch_and_their_answers(pipeline, run):
    model = api.load(run, home=pipeline.home, device="cpu")
    length = {"max_new_tokens" if model.kind == "ar" else "gen_length": 8}
    settings = model.fitted(model.settings(**length), PROMPTS[:1])
    alone = [model.generate(p, chat=True, settings=settings)[0].text for p in PROMPTS]
    batcher = Batcher(model, max_batch=3, window=60.0)  # the third job fills the batch: no wait
    pieces: list[str] = []
    jobs = [
        Job(model.tokenizer.chat_text([{"role": "user", "content": p}], True), settings, 0) for p in PROMPTS
    ]
    jobs[1].emit = pieces.append
    futures = [batcher.submit(job) for job in jobs]  # all three wait before the first is decoded
    results = [future.result(timeout=120) for future in futures]
    batcher.close()
    assert batcher.batches == [3]
    assert [r.text for r in results] == alone
    assert "".join(pieces) == results[1].text


def test_an_error_reaches_the_requests_of_its_batch_and_the_worker_goes_on(pipeline):
    model = api.load("ar-chat", home=pipeline.home, device="cpu")
    batcher = Batcher(model, max_batch=1)
    settings = model.settings(max_new_tokens=4)
    failed = batcher.submit(Job("x " * 5000, settings, 0))  # longer than the context
    with pytest.raises(UsageError, match="more than the model's context"):
        failed.result(timeout=120)
    assert batcher.submit(Job("Hello", settings, 0)).result(timeout=120).new_tokens >= 0
    batcher.close()
