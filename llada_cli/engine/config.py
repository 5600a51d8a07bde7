"""Model shapes and their presets. Plain dataclasses, saved into run.json as dicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .errors import UsageError


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 6400
    hidden_size: int = 512
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    num_kv_heads: int | None = None  # None: as many as query heads (no GQA)
    intermediate_size: int | None = None  # None: SwiGLU's 8/3 * hidden, rounded up to 64
    seq_len: int = 256
    rope_theta: float = 1e6
    rope_scaling: float = 1.0  # >1: YaRN-style stretch for generating past seq_len
    rope_original_max_position: int = 2048  # YaRN's original length: MiniMind's, whatever seq_len is
    tie_embeddings: bool = False
    qk_norm: bool = False
    norm_eps: float = 1e-5
    causal: bool = True  # True for the AR track, False for diffusion

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_attention_heads

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def mlp_size(self) -> int:
        if self.intermediate_size:
            return self.intermediate_size
        return 64 * ((8 * self.hidden_size // 3 + 63) // 64)

    def validate(self) -> ModelConfig:
        if self.hidden_size % self.num_attention_heads:
            raise UsageError(
                f"--hidden-size {self.hidden_size} must be a multiple of "
                f"--num-attention-heads {self.num_attention_heads}"
            )
        if self.head_dim % 2:
            raise UsageError(f"head size {self.head_dim} must be even for rotary embeddings")
        if self.num_attention_heads % self.kv_heads:
            raise UsageError(
                f"--num-attention-heads {self.num_attention_heads} must be a multiple of "
                f"--num-kv-heads {self.kv_heads}"
            )
        if self.seq_len < 2:
            raise UsageError("--seq-len must be at least 2")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


PRESETS: dict[str, ModelConfig] = {
    # ~1-3M parameters: CPU demos and tests.
    "tiny": ModelConfig(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, seq_len=128),
    # Nano-LLaDA v0.1: ~30M parameters.
    "small": ModelConfig(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, seq_len=256),
    # MiniMind2-small layout: GQA 8/2, tied embeddings, SwiGLU 1408.
    "minimind2": ModelConfig(
        hidden_size=512,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_kv_heads=2,
        intermediate_size=1408,
        tie_embeddings=True,
        seq_len=512,
    ),
}


def model_config_from_preset(preset: str, **overrides: Any) -> ModelConfig:
    """A preset with the size flags the user gave (None means: keep the preset's value)."""
    if preset not in PRESETS:
        raise UsageError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(PRESETS[preset], **given).validate()
