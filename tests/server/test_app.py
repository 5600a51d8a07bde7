"""`llada serve`'s HTTP API (server/app.py) through the official `openai` client against a live
server on a free port: answers as `api.Model.generate` gives them, streaming, errors, batching."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from llada_cli import api

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from llada_cli.cli.serve import bind  # noqa: E402
from llada_cli.server.app import create_app  # noqa: E402

QUESTION = [{"role": "user", "content": "What is the capital of Ninaria?"}]


@contextmanager
def serving(pipeline, **options) -> Iterator[tuple[openai.OpenAI, object]]:
    """A live server on a free port in this process, and a client with its key."""
    models = {name: api.load(name, home=pipeline.home, device="cpu") for name in ("ar-chat", "dlm-chat")}
    app = create_app(models, api_key="key", **options)
    listener = bind("127.0.0.1", 0)  # listening already: requests wait in its backlog until uvicorn runs
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    port = listener.getsockname()[1]
    try:
        yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="key", max_retries=0), app
    finally:
        server.should_exit = True
        thread.join()


def expected(pipeline, run: str, messages: list[dict], length: int) -> str:
    model = api.load(run, home=pipeline.home, device="cpu")
    text = model.tokenizer.chat_text(messages, add_generation_prompt=True)
    option = "max_new_tokens" if model.kind == "ar" else "gen_length"
    return model.generate(text, settings=model.fitted(model.settings(**{option: length}), [text]))[0].text


def test_models_chat_completions_and_streams_answer_as_the_api_does(pipeline):
    with serving(pipeline) as (client, _):
        assert sorted(m.id for m in client.models.list().data) == ["ar-chat", "dlm-chat"]
        for run in ("ar-chat", "dlm-chat"):
            want = expected(pipeline, run, QUESTION, 8)
            reply = client.chat.completions.create(model=run, messages=QUESTION, max_tokens=8, temperature=0)
            assert reply.choices[0].message.content == want
            assert reply.usage.completion_tokens > 0 and reply.choices[0].finish_reason in ("stop", "length")
            chunks = list(
                client.chat.completions.create(model=run, messages=QUESTION, max_tokens=8, stream=True)
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks) == want
            assert chunks[-1].choices[0].finish_reason in ("stop", "length")
        raw = client.completions.create(model="ar-chat", prompt="The capital of", max_tokens=4, temperature=0)
        model = api.load("ar-chat", home=pipeline.home, device="cpu")
        assert raw.choices[0].text == model.generate("The capital of", max_new_tokens=4)[0].text


def test_bad_requests_get_clear_errors(pipeline):
    with serving(pipeline) as (client, _):
        url = str(client.base_url)
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).models.list()
        with pytest.raises(openai.NotFoundError, match="not served here"):
            client.chat.completions.create(model="gpt-4", messages=QUESTION)
        for options, message in (
            ({"temperature": -1}, "temperature"),
            ({"top_p": 0.5, "model": "dlm-chat"}, "top_p"),
            ({"n": 2}, "n"),
            ({"messages": [{"role": "assistant", "content": "hi"}]}, "the last message must be the user's"),
        ):
            request = {"model": "ar-chat", "messages": QUESTION, **options}
            with pytest.raises(openai.BadRequestError, match=message):
                client.chat.completions.create(**request)


def test_concurrent_requests_are_decoded_in_one_batch_with_the_answers_they_get_alone(pipeline):
    questions = [[{"role": "user", "content": q}] for q in ("Hello", "Who are you?", "Hi there")]
    wanted = [expected(pipeline, "dlm-chat", q, 8) for q in questions]
    with serving(pipeline, max_batch=3, window=60.0) as (client, app):  # the third request fills the batch

        def ask(messages: list[dict]) -> str:
            reply = client.chat.completions.create(model="dlm-chat", messages=messages, max_tokens=8)
            return reply.choices[0].message.content

        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(ask, questions))
        assert app.state.batchers["dlm-chat"].batches == [3]
    assert answers == wanted
