"""An exponential moving average of the weights (`--ema-decay d`): after every optimizer step,
average <- d * average + (1 - d) * weights, in fp32, starting from the weights the run starts with.

Validation scores the average; each checkpoint stores it beside the weights (ema.safetensors, the
same format), so sampling, eval and export can use it and a resumed run continues it exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..model.transformer import Transformer


class EMA:
    def __init__(self, model: Transformer, decay: float) -> None:
        self.decay = decay
        named = list(model.named_parameters())  # a tied head is one parameter, named once
        self.names = [name for name, _ in named]
        self.parameters = [parameter for _, parameter in named]
        self.values = [parameter.detach().float().clone() for parameter in self.parameters]

    @torch.no_grad()
    def update(self) -> None:
        for average, parameter in zip(self.values, self.parameters, strict=True):
            average.lerp_(parameter.detach().float(), 1 - self.decay)

    def weights(self, whole: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`whole` (the model's state dict) with the average in place of each parameter, in its dtype."""
        averaged = dict(whole)
        for name, average in zip(self.names, self.values, strict=True):
            averaged[name] = average.to(whole[name].dtype)
        return averaged

    @torch.no_grad()
    def load(self, weights: dict[str, torch.Tensor]) -> None:
        for name, average in zip(self.names, self.values, strict=True):
            average.copy_(weights[name])

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the average inside, its own weights again after (bit for bit)."""
        with torch.no_grad():
            kept = [parameter.detach().clone() for parameter in self.parameters]
            for parameter, average in zip(self.parameters, self.values, strict=True):
                parameter.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, own in zip(self.parameters, kept, strict=True):
                    parameter.copy_(own)
