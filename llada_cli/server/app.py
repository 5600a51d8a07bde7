"""`llada serve`'s OpenAI-compatible HTTP API (docs/serve.md): /v1/models, /v1/chat/completions and
/v1/completions, with server-sent events when `stream` is true, on FastAPI (the `serve` extra).

Requests are validated by pydantic models (a bad one gets OpenAI's error shape with status 400,
an unknown model 404, a missing or wrong key 401); a request's sampler options become the run's
sampler settings (`max_tokens` is the answer length: AR tokens, diffusion slots), and its
decoding is batched with the other requests to the same run (batcher.py).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from ..api import Model, Result
from ..engine.errors import LladaError
from ..engine.sampling.common import cut_at_stops
from .batcher import WINDOW, Batcher, Job


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class Sampling(BaseModel):
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0, le=10)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int = 0
    stop: str | list[str] | None = None
    stream: bool = False
    n: Literal[1] = 1


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)


class CompletionRequest(Sampling):
    prompt: str = Field(min_length=1)


def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def create_app(
    models: dict[str, Model], api_key: str | None = None, max_batch: int = 8, window: float = WINDOW
) -> FastAPI:
    """The app serving `models` by name; each gets a batcher (`max_batch` requests, gathered for
    `window` seconds), stopped with the app."""
    batchers = {name: Batcher(model, max_batch, window) for name, model in models.items()}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for batcher in batchers.values():
            batcher.close()

    app = FastAPI(title="llada serve", lifespan=lifespan)
    app.state.batchers = batchers

    @app.middleware("http")
    async def check_key(request: Request, call_next: Any) -> Any:
        if api_key is not None and request.headers.get("authorization") != f"Bearer {api_key}":
            return error(
                401, "a missing or wrong API key: send Authorization: Bearer KEY", "authentication_error"
            )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part != "body")
        return error(400, f"{where}: {first['msg']}")

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": f"llada ({m.kind})"}
            for name, m in models.items()
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatRequest) -> Any:
        if request.messages[-1].role != "user":
            return error(400, "messages: the last message must be the user's")
        model = models.get(request.model)
        if model is None:
            return unknown_model(request.model, models)
        text = model.tokenizer.chat_text(
            [m.model_dump() for m in request.messages], add_generation_prompt=True
        )
        return await complete(model, request, text, "chat.completion")

    @app.post("/v1/completions", response_model=None)
    async def completions(request: CompletionRequest) -> Any:
        model = models.get(request.model)
        if model is None:
            return unknown_model(request.model, models)
        return await complete(model, request, request.prompt, "text_completion")

    async def complete(model: Model, request: Sampling, text: str, kind: str) -> Any:
        try:
            job = Job(text, settings_of(model, request, text), request.seed, stops_of(request))
        except LladaError as problem:
            return error(400, problem.render(str))
        name = request.model
        if request.stream:
            return StreamingResponse(events(batchers[name], job, name, kind), media_type="text/event-stream")
        try:
            result = await asyncio.wrap_future(batchers[name].submit(job))
        except LladaError as problem:
            return error(400, problem.render(str))
        return response(result, job, name, kind)

    return app


def unknown_model(name: str, models: dict[str, Model]) -> JSONResponse:
    return error(404, f"model '{name}' is not served here; serving: {', '.join(models)}", "not_found_error")


def settings_of(model: Model, request: Sampling, text: str) -> Any:
    """The run's sampler settings for this request, the answer length fitted to its own prompt
    (so it does not depend on the requests it is batched with)."""
    options: dict[str, Any] = {"temperature": request.temperature}
    if request.max_tokens is not None:
        options["max_new_tokens"] = request.max_tokens  # AR tokens, diffusion slots (Model.settings)
    if request.top_p is not None:
        if model.kind != "ar":
            raise LladaError("top_p: diffusion sampling has no nucleus; use temperature")
        options["top_p"] = request.top_p
    return model.fitted(model.settings(**options), [text])


def stops_of(request: Sampling) -> tuple[str, ...]:
    stop = request.stop
    return (stop,) if isinstance(stop, str) else tuple(stop or ())


def finish_reason(result: Result, text: str) -> str:
    return "stop" if result.finished or len(text) < len(result.text) else "length"


def response(result: Result, job: Job, name: str, kind: str) -> dict[str, Any]:
    text = cut_at_stops(result.text, job.stops)
    reason = finish_reason(result, text)
    choice: dict[str, Any] = {"index": 0, "finish_reason": reason}
    if kind == "chat.completion":
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice |= {"text": text, "logprobs": None}
    usage = {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.new_tokens,
        "total_tokens": result.prompt_tokens + result.new_tokens,
    }
    return {
        "id": f"llada-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": name,
        "choices": [choice],
        "usage": usage,
    }


async def events(batcher: Batcher, job: Job, name: str, kind: str) -> AsyncIterator[str]:
    """Server-sent events: the answer's pieces as they are committed, a last chunk with the finish
    reason, then [DONE]."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[str] = asyncio.Queue()

    def emit(piece: str) -> None:  # called by the batcher's thread
        loop.call_soon_threadsafe(pieces.put_nowait, piece)

    job.emit = emit
    done = asyncio.wrap_future(batcher.submit(job))
    chunk_kind = "chat.completion.chunk" if kind == "chat.completion" else "text_completion"
    base = {
        "id": f"llada-{uuid.uuid4().hex}",
        "object": chunk_kind,
        "created": int(time.time()),
        "model": name,
    }

    def chunk(piece: str | None, reason: str | None, first: bool = False) -> str:
        if kind == "chat.completion":
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            if piece:
                delta["content"] = piece
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": reason}
        else:
            choice = {"index": 0, "text": piece or "", "logprobs": None, "finish_reason": reason}
        return f"data: {json.dumps({**base, 'choices': [choice]}, ensure_ascii=False)}\n\n"

    yield chunk(None, None, first=True)
    while not (done.done() and pieces.empty()):
        getter = asyncio.ensure_future(pieces.get())
        waited: set[asyncio.Future[Any]] = {getter, done}
        await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            yield chunk(getter.result(), None)
        else:
            getter.cancel()
    try:
        result = done.result()
    except LladaError as problem:
        failure = {"error": {"message": problem.render(str), "type": "invalid_request_error"}}
        yield f"data: {json.dumps(failure)}\n\n"
        return
    yield chunk(None, finish_reason(result, cut_at_stops(result.text, job.stops)))
    yield "data: [DONE]\n\n"
