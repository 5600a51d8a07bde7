"""Models, batches and constants the objective tests share."""

from __future__ import annotations

import torch
from torch import nn

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.objectives.diffusion_sft import DiffusionSFTObjective
from llada_cli.engine.objectives.losses import SFTBatch

VOCAB, MASK, EOS = 64, 63, 0


EPS = 1e-3


def tiny_model(causal: bool, seed: int = 0, logit_shift: bool = False) -> Transformer:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        seq_len=32,
        causal=causal,
        logit_shift=logit_shift,
    )
    return Transformer(config)


class ConstantModel(nn.Module):
    """Uniform logits everywhere, so every cross entropy is exactly log(VOCAB); records its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig(vocab_size=VOCAB, hidden_size=4, num_attention_heads=1, causal=False)
        self.lm_head = nn.Linear(4, VOCAB, bias=False)
        nn.init.zeros_(self.lm_head.weight)
        self.inputs: list[torch.Tensor] = []
        self.attn_masks: list[torch.Tensor | None] = []

    def hidden_states(self, input_ids, positions, attn_mask, past):
        self.inputs.append(input_ids)
        self.attn_masks.append(attn_mask)
        return torch.zeros(*input_ids.shape, 4), []


def clean_ids(rows: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, MASK, (rows, length), generator=torch.Generator().manual_seed(seed))


def token_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-position cross entropy from full logits, written out: -log softmax at the target."""
    return -logits.float().log_softmax(dim=-1).gather(-1, targets[..., None])[..., 0]


def sft_batch() -> SFTBatch:
    ids = clean_ids(2, 10)
    response = torch.zeros(2, 10, dtype=torch.bool)
    response[0, 4:7] = True  # prompt 0..3, response 4..6, EOS padding 7..9
    response[1, 3:10] = True  # no padding
    pad = torch.zeros(2, 10, dtype=torch.bool)
    pad[0, 7:] = True
    ids[0, 7:] = EOS
    return SFTBatch(ids, response, pad)


def sft(**kwargs) -> DiffusionSFTObjective:
    return DiffusionSFTObjective(mask_id=MASK, **kwargs)


class StubCrossEntropy(nn.Module):
    """Two tokens (0 = every clean token, 1 = mask): at every position the cross entropy of token 0 is
    f(fraction of the row that is masked), so an objective's expected loss can be worked out by hand."""

    def __init__(self, f) -> None:
        super().__init__()
        self.f = f
        self.config = ModelConfig(vocab_size=2, hidden_size=2, num_attention_heads=1, causal=False)
        self.lm_head = nn.Identity()

    def hidden_states(self, input_ids, positions, attn_mask, past):
        rows, length = input_ids.shape
        ce = self.f((input_ids == 1).float().mean(dim=1)).clamp(min=1e-6)
        other = torch.log(torch.expm1(ce))  # log(1 + e^other) = ce for the target logit 0
        logits = torch.stack((torch.zeros_like(other), other), dim=-1)
        return logits[:, None, :].expand(rows, length, 2), []

    def forward(self, input_ids, positions=None, attn_mask=None):
        return self.hidden_states(input_ids, positions, attn_mask, None)[0]

    def parameters(self, recurse: bool = True):
        yield torch.zeros(1)


def monte_carlo_mean(objective, batch, draws: int, progress: float = 0.5) -> float:
    generator = torch.Generator().manual_seed(0)
    model = StubCrossEntropy(lambda frac: torch.full_like(frac, 2.0))
    return sum(objective(model, batch, generator, progress).loss.item() for _ in range(draws)) / draws
