"""`--live`: the answer being denoised, masked slots as placeholders filling in step by step."""

from __future__ import annotations

from types import TracebackType

import torch
from rich.live import Live
from rich.text import Text

from ..engine.tokenizer import Tokenizer
from .common import err

PLACEHOLDER = "░"


class LiveDenoising:
    def __init__(self, tokenizer: Tokenizer, enabled: bool) -> None:
        self.tokenizer = tokenizer
        self.enabled = enabled
        self.live: Live | None = None

    def __enter__(self) -> LiveDenoising:
        if self.enabled:
            self.live = Live(Text(""), console=err, refresh_per_second=20, transient=False)
            self.live.start()
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.stop()

    def render(self, step: int, region: torch.Tensor) -> Text:
        """The first row of the generated region: decoded tokens, placeholders where still masked."""
        text = Text(f"step {step:>4}  ", style="dim")
        for token_id in region[0].tolist():
            if token_id == self.tokenizer.mask_id:
                text.append(PLACEHOLDER, style="grey50")
            else:
                text.append(self.tokenizer.decode([token_id], skip_special_tokens=False), style="bold")
        return text

    def update(self, step: int, region: torch.Tensor) -> None:
        if self.live is not None:
            self.live.update(self.render(step, region))
