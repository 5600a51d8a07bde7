"""`--live`: the answer being denoised, masked slots as placeholders filling in step by step."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from rich.live import Live
from rich.text import Text

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


class LiveDenoising:
    """The first row of the answer, redrawn in place at each step, wrapped at the terminal's width;
    it disappears when done, since the command prints the answer itself."""

    def __init__(self, tokenizer: Tokenizer, enabled: bool) -> None:
        self.tokenizer = tokenizer
        self.enabled = enabled
        self.live: Live | None = None

    def __enter__(self) -> LiveDenoising:
        if self.enabled:
            self.live = Live(Text(""), console=err, refresh_per_second=20, transient=True)
            self.live.start()
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.stop()

    def render(self, step: int, region: torch.Tensor) -> Text:
        text = Text(f"step {step:>4}  ", style="dim", no_wrap=False, overflow="fold")
        text.append(readable(self.tokenizer, region[0].tolist()), style="bold")
        text.highlight_regex(f"{PLACEHOLDER}+", "grey50")
        return text

    def update(self, step: int, region: torch.Tensor) -> None:
        if self.live is not None:
            self.live.update(self.render(step, region))
