"""The one Transformer behind both kinds (docs/algorithms.md section 1).

embedding -> N x (RMSNorm -> attention with RoPE -> residual, RMSNorm -> SwiGLU -> residual)
-> RMSNorm -> linear head. `config.causal` picks the AR kind (causal attention) or the
diffusion kind (bidirectional). Parameter names follow the Llama/MiniMind layout so that
external checkpoints map onto it by name.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..config import ModelConfig

# Keys and values of one layer, after RoPE: (B, kv_heads, S, head_dim) each.
KV = tuple[torch.Tensor, torch.Tensor]


# MiniMind's YaRN ramp (model_minimind.py, rope_scaling): pairs whose wave turns more than
# YARN_BETA_FAST times over the original length keep their frequency, those turning fewer than
# YARN_BETA_SLOW times are divided by the factor, and the ones between blend linearly.
YARN_BETA_FAST, YARN_BETA_SLOW = 32.0, 1.0


def rope_inverse_frequencies(config: ModelConfig) -> torch.Tensor:
    """Rotary frequencies of the head's dim/2 pairs, stretched YaRN-style when rope_scaling > 1.

    As MiniMind: the ramp is placed by config.rope_original_max_position (not seq_len), the
    attention factor is 1 (cos/sin unscaled), and scaling applies to every position whenever it is
    on, since MiniMind's position table (32768) always exceeds its original length (2048).
    """
    dim, base, original = config.head_dim, config.rope_theta, config.rope_original_max_position
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    if config.rope_scaling <= 1.0:
        return inv_freq.float()

    def pair_turning(turns: float) -> float:
        """The fractional pair index whose wave turns `turns` times over the original length."""
        return dim * math.log(original / (turns * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(pair_turning(YARN_BETA_FAST)), 0)
    high = min(math.ceil(pair_turning(YARN_BETA_SLOW)), dim // 2 - 1)
    ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) / max(high - low, 0.001)).clamp(0.0, 1.0)
    return (inv_freq * (1 - ramp + ramp / config.rope_scaling)).float()


def rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[i], x[i + d/2]) by the position's angle (the half-split RoPE convention).

    x * cos + (-x2, x1) * sin, with the sign folded into `signed_sin` (-sin, +sin) so that the
    swapped halves are one roll: no negation and no concatenation in the training step.
    """
    return (x * cos + x.roll(x.shape[-1] // 2, dims=-1) * signed_sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = (
            config.num_attention_heads,
            config.kv_heads,
            config.head_dim,
        )
        hidden = config.hidden_size
        self.q_proj = nn.Linear(hidden, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, hidden, bias=False)
        self.dropout = config.dropout
        self.q_norm = nn.RMSNorm(self.head_dim, eps=config.norm_eps) if config.qk_norm else None
        self.k_norm = nn.RMSNorm(self.head_dim, eps=config.norm_eps) if config.qk_norm else None

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        attn_mask: torch.Tensor | None,
        is_causal: bool,
        past: KV | None,
    ) -> tuple[torch.Tensor, KV]:
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, self.heads, self.head_dim)
        k = self.k_proj(x).view(batch, length, self.kv_heads, self.head_dim)
        v = self.v_proj(x).view(batch, length, self.kv_heads, self.head_dim)
        if self.q_norm is not None and self.k_norm is not None:  # both or neither: config.qk_norm
            q, k = self.q_norm(q), self.k_norm(k)
        q = rotate(q.transpose(1, 2), cos, sin)
        k = rotate(k.transpose(1, 2), cos, sin)
        v = v.transpose(1, 2)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
            enable_gqa=self.kv_heads != self.heads,
        )
        out = out.transpose(1, 2).reshape(batch, length, self.heads * self.head_dim)
        return self.o_proj(out), (k, v)


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.mlp_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.mlp_size, bias=False)
        self.down_proj = nn.Linear(config.mlp_size, config.hidden_size, bias=False)
        self.activation, self.dropout = getattr(F, config.hidden_act), config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.down_proj(self.activation(self.gate_proj(x)) * self.up_proj(x))
        return F.dropout(out, self.dropout, self.training)


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.input_layernorm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, attn_mask, is_causal, past) -> tuple[torch.Tensor, KV]:
        attended, kv = self.self_attn(self.input_layernorm(x), cos, sin, attn_mask, is_causal, past)
        x = x + attended
        return x + self.mlp(self.post_attention_layernorm(x)), kv


class Transformer(nn.Module):
    inv_freq: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.gradient_checkpointing = False  # a training setting (TrainConfig), not part of the model
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        blocks = [Block(config) for _ in range(config.num_hidden_layers)]
        self.layers = nn.ModuleList(blocks)
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.register_buffer("inv_freq", rope_inverse_frequencies(config), persistent=False)
        self.apply(self._init_weights)
        residual_std = 0.02 / math.sqrt(2 * config.num_hidden_layers)
        for block in blocks:
            nn.init.normal_(block.self_attn.o_proj.weight, std=residual_std)
            nn.init.normal_(block.mlp.down_proj.weight, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and signed sin (see rotate) for positions (L,) or (B, L), shaped to broadcast over
        (B, heads, L, head_dim)."""
        angles = positions.to(self.inv_freq.dtype)[..., None] * self.inv_freq
        cos, sin = angles.cos(), angles.sin()
        cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)
        if positions.dim() == 2:  # (B, L, D) -> (B, 1, L, D)
            return cos[:, None], sin[:, None]
        return cos, sin

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, L, V) of the token at each position. attn_mask: bool, True = may attend,
        broadcastable to (B, H, L, L)."""
        hidden, _ = self.hidden_states(input_ids, positions, attn_mask, past=None)
        return self.lm_head(aligned(hidden, self.config))

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None,
        attn_mask: torch.Tensor | None,
        past: list[KV] | None,
    ) -> tuple[torch.Tensor, list[KV]]:
        length = input_ids.shape[1]
        past_length = past[0][0].shape[2] if past else 0
        if positions is None:
            positions = torch.arange(past_length, past_length + length, device=input_ids.device)
        cos, sin = self.rope(positions)
        attn_mask, is_causal = self._attention_rule(attn_mask, length, past_length, input_ids.device)
        x = self.embed_tokens(input_ids)
        new_kv: list[KV] = []
        for i, block in enumerate(self.layers):
            layer_past = past[i] if past else None
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                # keep only the block's input; recompute its activations in the backward pass
                x, kv = checkpoint(block, x, cos, sin, attn_mask, is_causal, layer_past, use_reentrant=False)
            else:
                x, kv = block(x, cos, sin, attn_mask, is_causal, layer_past)
            new_kv.append(kv)
        return self.norm(x), new_kv

    def _attention_rule(
        self, attn_mask: torch.Tensor | None, length: int, past_length: int, device: torch.device
    ) -> tuple[torch.Tensor | None, bool]:
        """Combine the caller's mask with causality; SDPA's fast is_causal path when nothing else applies."""
        if not self.config.causal:
            return attn_mask, False
        if attn_mask is None and past_length == 0:
            return None, True
        if length == 1 and attn_mask is None:
            return None, False  # one new token after the cache sees everything before it
        rows = torch.arange(length, device=device)[:, None] + past_length
        causal = torch.arange(past_length + length, device=device)[None, :] <= rows
        return (causal if attn_mask is None else attn_mask & causal), False


def aligned(hidden: torch.Tensor, config: ModelConfig, before: torch.Tensor | None = None) -> torch.Tensor:
    """The hidden states that predict the token at each column of `hidden` (B, L, D).

    With `config.logit_shift` column i reads the state of column i - 1 (docs/algorithms.md
    section 11); the first column reads `before` (B, 1, D), the state of the column before these
    ones, or its own state when there is none (column 0 of a sequence, as Dream).
    """
    if not config.logit_shift:
        return hidden
    first = hidden[:, :1] if before is None else before
    return torch.cat((first, hidden[:, :-1]), dim=1)


def grow_vocab(model: Transformer, new_vocab_size: int) -> Transformer:
    """A copy of `model` whose embedding (and head) gain rows set to the mean of the existing rows.

    Used when an AR checkpoint without <|mask|> initialises a diffusion model (docs/algorithms.md section 1).
    """
    old = model.config.vocab_size
    grown = Transformer(replace(model.config, vocab_size=new_vocab_size))
    state = model.state_dict()
    with torch.no_grad():
        for name in ("embed_tokens.weight", "lm_head.weight"):
            weight = state[name]
            extra = weight.mean(dim=0, keepdim=True).expand(new_vocab_size - old, -1)
            state[name] = torch.cat((weight, extra), dim=0)
    grown.load_state_dict(state)
    return grown
