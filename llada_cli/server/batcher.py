"""Dynamic batching for `llada serve` (docs/serve.md): requests to one run that arrive together are
decoded together, in one sampler batch.

Each run has one worker thread. It takes the first waiting request, the others waiting already and
those that arrive within `window` seconds (default none; up to `max_batch`), groups them by
sampler settings (a batch shares its settings; the samplers already pad prompts of different
lengths) and decodes each group in one `generate` call. A streaming request receives, after every
step, the text its row has committed from the start of the answer up to the first slot still
masked (AR: every token; diffusion: whole runs of committed slots, a block at a time with
semi-autoregressive decoding).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from ..api import Model, Result
from ..engine.sampling.common import cut_at_stops
from ..engine.sampling.settings import ARSettings, DiffusionSettings

# how long the first waiting request waits for others to join its batch: none by default, so a lone
# request is never delayed; requests that arrive while a batch decodes form the next one
WINDOW = 0.0


@dataclass
class Job:
    prompt: str  # the chat-templated or raw text, as generate() encodes it
    settings: ARSettings | DiffusionSettings
    seed: int
    stops: tuple[str, ...] = ()  # the answer ends before the first of these
    emit: Callable[[str], None] | None = None  # streaming: each new piece of the answer's text
    done: Future[Result] = field(default_factory=Future)
    sent: str = ""  # the text streamed so far

    def stream(self, text: str) -> None:
        """Send what `text` (the answer so far) adds to what was sent; nothing past a stop string."""
        text = cut_at_stops(text, self.stops)
        if self.emit is not None and text.startswith(self.sent) and len(text) > len(self.sent):
            self.emit(text[len(self.sent) :])
            self.sent = text


class Batcher:
    def __init__(self, model: Model, max_batch: int = 8, window: float = WINDOW) -> None:
        self.model, self.max_batch, self.window = model, max_batch, window
        self.waiting: queue.Queue[Job | None] = queue.Queue()
        self.thread = threading.Thread(target=self._work, name=f"batcher-{model.name}", daemon=True)
        self.batches: list[int] = []  # the size of every batch decoded, for the curious and the tests
        self.thread.start()

    def submit(self, job: Job) -> Future[Result]:
        self.waiting.put(job)
        return job.done

    def close(self) -> None:
        self.waiting.put(None)
        self.thread.join()

    def _work(self) -> None:
        while (first := self.waiting.get()) is not None:
            jobs = [first]
            deadline = time.monotonic() + self.window
            closing = False
            while len(jobs) < self.max_batch:
                try:  # what is waiting already, then what arrives within the window
                    left = deadline - time.monotonic()
                    job = self.waiting.get(timeout=left) if left > 0 else self.waiting.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    closing = True
                    break
                jobs.append(job)
            groups: dict[tuple, list[Job]] = {}
            for job in jobs:
                groups.setdefault((repr(job.settings), job.seed), []).append(job)
            for group in groups.values():
                self._decode(group)
            if closing:
                return

    def _decode(self, jobs: list[Job]) -> None:
        self.batches.append(len(jobs))
        streaming = any(job.emit is not None for job in jobs)
        try:
            results = self.model.generate(
                [job.prompt for job in jobs],
                seed=jobs[0].seed,
                settings=jobs[0].settings,
                on_step=self._streamer(jobs) if streaming else None,
            )
        except Exception as error:  # each waiting request gets the error, the worker carries on
            for job in jobs:
                job.done.set_exception(error)
            return
        for job, result in zip(jobs, results, strict=True):
            job.stream(result.text)
            job.done.set_result(result)

    def _streamer(self, jobs: list[Job]) -> Callable[[int, torch.Tensor], None]:
        """on_step: each row's committed prefix, decoded and streamed."""
        tokenizer = self.model.tokenizer
        # where a row's committed start ends: a slot not yet decided (AR: -1; diffusion: the mask) or a stop
        ends = {tokenizer.eos_id, tokenizer.im_end_id, -1}
        if self.model.kind == "diffusion":
            ends.add(tokenizer.diffusion_mask_id)

        def on_step(step: int, tokens: torch.Tensor) -> None:
            for job, row in zip(jobs, tokens.tolist(), strict=True):
                if job.emit is None:
                    continue
                prefix = []
                for token in row:
                    if token in ends:
                        break
                    prefix.append(token)
                text = tokenizer.decode(prefix).lstrip()
                job.stream(text.rstrip("\ufffd"))  # a character cut between tokens waits for its end

        return on_step
