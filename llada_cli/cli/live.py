"""`--live`: the answer being written, step by step: a diffusion run's masked slots as placeholders
filling in, an AR run's tokens as they come. Frames are shown at most `fps` a second, so that a
tiny model's few steps are seen rather than flashed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..engine.errors import UsageError
from ..engine.model.tokenizer import Tokenizer
from .common import err

if TYPE_CHECKING:
    import torch

PLACEHOLDER = "░"


def readable(tokenizer: Tokenizer, ids: list[int]) -> str:
    """A row of generated ids as a person should see it: up to the first end token (the padding
    after it shows as nothing), masked slots as placeholders, and never half a character."""
    stops = {tokenizer.eos_id, tokenizer.im_end_id, -1}  # -1: an AR row that already stopped
    pieces: list[str] = []
    run: list[int] = []
    for token in ids:
        if token in stops:
            break
        if token == tokenizer.mask_id:
            pieces += [_whole(tokenizer.decode(run)), PLACEHOLDER]
            run = []
        else:
            run.append(token)
    pieces.append(_whole(tokenizer.decode(run)))
    return "".join(pieces)


def _whole(text: str) -> str:
    # byte-level tokens cut at a mask or at the end decode to U+FFFD until the rest arrives
    return text.replace("\ufffd", "")


DEFAULT_FPS = 8.0


def check_fps(fps: float) -> float:
    """--live-fps as given, refused unless a finite number above 0."""
    if not math.isfinite(fps):
        raise UsageError(f"--live-fps must be a finite number, got {fps}")
    if fps <= 0:
        raise UsageError(f"--live-fps must be more than 0 (frames per second), got {fps:g}")
    return fps


class LiveDenoising:
    """The first row of the answer, redrawn in place at each step, wrapped at the terminal's width,
    each frame held at least 1/fps seconds (the last one too; fps None: not held, as chat wants
    its answer without waiting); it disappears when done, since the
    command prints the answer itself. Only on a terminal: elsewhere nothing is drawn or waited for.
    `clock` and `sleep` are what time is read and waited with (tests pass their own)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        enabled: bool,
        fps: float | None = DEFAULT_FPS,
        console: Console = err,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.tokenizer = tokenizer
        self.enabled = enabled and console.is_terminal
        self.frame_seconds = 0.0 if fps is None else 1 / check_fps(fps)
        self.console, self.clock, self.sleep = console, clock, sleep
        self.live: Live | None = None
        self.shown_at: float | None = None  # when the last frame was drawn

    def __enter__(self) -> LiveDenoising:
        if self.enabled:
            self.live = Live(Text(""), console=self.console, auto_refresh=False, transient=True)
            self.live.start()
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self.live is not None:
            if value is None:
                self._hold()  # the last frame is seen as long as the others
            self.live.stop()

    def _hold(self) -> None:
        if self.shown_at is not None:
            left = self.frame_seconds - (self.clock() - self.shown_at)
            if left > 0:
                self.sleep(left)

    def render(self, step: int, region: torch.Tensor) -> Text:
        text = Text(f"step {step:>4}  ", style="dim", no_wrap=False, overflow="fold")
        text.append(readable(self.tokenizer, region[0].tolist()), style="bold")
        text.highlight_regex(f"{PLACEHOLDER}+", "grey50")
        return text

    def update(self, step: int, region: torch.Tensor) -> None:
        """Show this step once the previous frame has been up 1/fps seconds."""
        if self.live is not None:
            self._hold()
            self.live.update(self.render(step, region), refresh=True)
            self.shown_at = self.clock()
