"""Importing external MiniMind and Nano-LLaDA checkpoints as llada runs (docs/algorithms.md section 11).

The layouts were read off their sources. Each maps exactly onto our Transformer, so an imported
model computes the same logits as the original:

- "minimind" (MiniMind2, jingyaogong/minimind model/model_minimind.py): model.embed_tokens,
  model.layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
  mlp.{gate,up,down}_proj}, model.norm, lm_head tied to the embedding: our names behind "model.".
  RMSNorm eps 1e-5, half-split RoPE (rotate_half) with theta 1e6, GQA, scores / sqrt(head_dim).
- "minimind-qk-norm" (current MiniMind): the same plus self_attn.{q,k}_norm, a per-head RMSNorm
  applied before RoPE as ours is; RMSNorm eps 1e-6; the head size is the length of q_norm.
- "minimind-v1" (first MiniMind, model/model.py, llama2.c names): tok_embeddings,
  layers.{i}.{attention_norm, attention.{wq,wk,wv,wo}, ffn_norm, feed_forward.{w1,w3,w2}}, norm,
  output. Its RoPE rotates interleaved pairs (x[2j], x[2j+1]) with theta 1e4, so the q/k rows of
  every head are reordered to put each pair half a head apart, where ours rotates them.
- "nano-llada" (Nano-LLaDA scripts/train/diffusion.py; its AR model core/model_minimind.py uses
  the same names): token_emb, blocks.{i}.attn.{c_q,c_k,c_v,c_proj}, blocks.{i}.mlp.{gate,up,
  down}_proj, an untied lm_head, no GQA. Its RMSNorms have no weights (eps 1e-5): after the
  embedding, before attention and MLP, at the end, and on q/k after RoPE. We set those weights to
  one, fold the embedding norm into the table (normalising a row commutes with looking it up) and
  keep qk-norm before RoPE (a rotation keeps the norm, so without weights the order is free).

Files load through safetensors or torch.load(weights_only=True), never unrestricted pickle.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..config import ModelConfig
from ..errors import LladaError, UsageError, named
from ..model.transformer import Transformer
from .files import State, read_checkpoint

# Without q_norm the head size is not in any shape: MiniMind2 and Nano-LLaDA both default to 64.
DEFAULT_HEAD_DIM = 64
LAYER = re.compile(r"^layers\.(\d+)\.")


@dataclass(frozen=True)
class Layout:
    name: str
    marker: str  # a layer-0 name only this layout has
    renames: dict[str, str | None]  # our name ({i}: the layer) -> its name there; None: no weight there
    norm_eps: float
    rope_theta: float
    qk_norm: bool
    interleaved_rope: bool = False
    normed_embedding: bool = False

    def source_name(self, ours: str) -> str | None:
        match = LAYER.match(ours)
        template = LAYER.sub("layers.{i}.", ours) if match else ours
        if template not in self.renames:
            return ours
        source = self.renames[template]
        return source.format(i=match.group(1)) if source and match else source


MINIMIND_V1_NAMES: dict[str, str | None] = {
    "embed_tokens.weight": "tok_embeddings.weight",
    "lm_head.weight": "output.weight",
    "layers.{i}.input_layernorm.weight": "layers.{i}.attention_norm.weight",
    "layers.{i}.self_attn.q_proj.weight": "layers.{i}.attention.wq.weight",
    "layers.{i}.self_attn.k_proj.weight": "layers.{i}.attention.wk.weight",
    "layers.{i}.self_attn.v_proj.weight": "layers.{i}.attention.wv.weight",
    "layers.{i}.self_attn.o_proj.weight": "layers.{i}.attention.wo.weight",
    "layers.{i}.post_attention_layernorm.weight": "layers.{i}.ffn_norm.weight",
    "layers.{i}.mlp.gate_proj.weight": "layers.{i}.feed_forward.w1.weight",
    "layers.{i}.mlp.up_proj.weight": "layers.{i}.feed_forward.w3.weight",
    "layers.{i}.mlp.down_proj.weight": "layers.{i}.feed_forward.w2.weight",
}
NANO_LLADA_NAMES: dict[str, str | None] = {
    "embed_tokens.weight": "token_emb.weight",
    "norm.weight": None,
    "layers.{i}.input_layernorm.weight": None,
    "layers.{i}.self_attn.q_proj.weight": "blocks.{i}.attn.c_q.weight",
    "layers.{i}.self_attn.k_proj.weight": "blocks.{i}.attn.c_k.weight",
    "layers.{i}.self_attn.v_proj.weight": "blocks.{i}.attn.c_v.weight",
    "layers.{i}.self_attn.o_proj.weight": "blocks.{i}.attn.c_proj.weight",
    "layers.{i}.self_attn.q_norm.weight": None,
    "layers.{i}.self_attn.k_norm.weight": None,
    "layers.{i}.post_attention_layernorm.weight": None,
    "layers.{i}.mlp.gate_proj.weight": "blocks.{i}.mlp.gate_proj.weight",
    "layers.{i}.mlp.up_proj.weight": "blocks.{i}.mlp.up_proj.weight",
    "layers.{i}.mlp.down_proj.weight": "blocks.{i}.mlp.down_proj.weight",
}
# In detection order: the qk-norm MiniMind before MiniMind2, whose marker it also has.
LAYOUTS = (
    Layout("nano-llada", "blocks.0.attn.c_q.weight", NANO_LLADA_NAMES, 1e-5, 1e6, True, False, True),
    Layout("minimind-v1", "layers.0.attention.wq.weight", MINIMIND_V1_NAMES, 1e-5, 1e4, False, True),
    Layout("minimind-qk-norm", "layers.0.self_attn.q_norm.weight", {}, 1e-6, 1e6, True),
    Layout("minimind", "layers.0.self_attn.q_proj.weight", {}, 1e-5, 1e6, False),
)
LAYOUTS_BY_NAME = {layout.name: layout for layout in LAYOUTS}


@dataclass
class ImportReport:
    layout: str
    matched: list[str]
    missing: list[str]
    unexpected: list[str]
    unit_norms: list[str] = field(default_factory=list)  # weightless norms in the source, set to one

    def summary(self) -> str:
        text = f"{self.layout}: matched {len(self.matched)} tensors, {len(self.missing)} missing"
        text += f"{_preview(self.missing)}, {len(self.unexpected)} unexpected{_preview(self.unexpected)}"
        if self.unit_norms:
            text += f"; {len(self.unit_norms)} weightless norms set to 1"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _preview(names: list[str], shown: int = 3) -> str:
    if not names:
        return ""
    more = f", +{len(names) - shown} more" if len(names) > shown else ""
    return f" ({', '.join(names[:shown])}{more})"


# ---------------------------------------------------------------------------
# the architecture, read off the names and shapes


def detect_layout(state: State) -> Layout:
    if any(".experts." in name for name in state):
        raise LladaError("this is a mixture-of-experts MiniMind checkpoint; llada imports dense models only")
    for layout in LAYOUTS:
        if layout.marker in state:
            return layout
    shown = ", ".join(sorted(state)[:4])
    raise LladaError(f"unknown checkpoint layout ({shown}, ...); llada imports MiniMind and Nano-LLaDA")


def infer_model_config(
    state: State,
    causal: bool,
    seq_len: int = 512,
    rope_theta: float | None = None,
    num_attention_heads: int | None = None,
    norm_eps: float | None = None,
) -> tuple[ModelConfig, str]:
    """The ModelConfig of a source state dict and its layout name; None arguments take the layout's value.

    The head count comes from q_norm when the layout has it, else from `num_attention_heads`, else
    from 64-dimensional heads (the MiniMind2 / Nano-LLaDA default).
    """
    layout = detect_layout(state)

    def shape(ours: str) -> torch.Size:
        name = layout.source_name(ours)
        if name not in state:
            raise LladaError(f"the {layout.name} checkpoint has no {name}")
        return state[name].shape

    vocab, hidden = _embedding(state, layout).shape
    query_rows = shape("layers.0.self_attn.q_proj.weight")[0]
    head_dim = _head_dim(state, layout, query_rows, num_attention_heads)
    if query_rows != hidden:
        raise LladaError(f"q_proj has {query_rows} rows, hidden size is {hidden}: llada needs them equal")
    kv_rows = shape("layers.0.self_attn.k_proj.weight")[0]
    if kv_rows % head_dim:
        raise LladaError(f"k_proj has {kv_rows} rows, not a multiple of the head size {head_dim}")
    config = ModelConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=_count_layers(state, layout),
        num_attention_heads=query_rows // head_dim,
        num_kv_heads=kv_rows // head_dim,
        intermediate_size=shape("layers.0.mlp.gate_proj.weight")[0],
        seq_len=seq_len,
        rope_theta=layout.rope_theta if rope_theta is None else rope_theta,
        tie_embeddings=_is_tied(state, layout),
        qk_norm=layout.qk_norm,
        norm_eps=layout.norm_eps if norm_eps is None else norm_eps,
        causal=causal,
    )
    return config, layout.name


def _embedding(state: State, layout: Layout) -> torch.Tensor:
    """The embedding table; a tied checkpoint may have kept it only under the head's name."""
    for ours in ("embed_tokens.weight", "lm_head.weight"):
        name = layout.source_name(ours)
        if name in state:
            return state[name]
    raise LladaError(f"the {layout.name} checkpoint has no {layout.source_name('embed_tokens.weight')}")


def _head_dim(state: State, layout: Layout, query_rows: int, heads: int | None) -> int:
    q_norm = layout.source_name("layers.0.self_attn.q_norm.weight")
    if q_norm in state:
        head_dim = state[q_norm].shape[0]
        if heads is not None and heads * head_dim != query_rows:
            have = query_rows // head_dim
            raise UsageError(
                f"{named('num_attention_heads')} {heads} does not match the checkpoint's {have} heads"
            )
        return head_dim
    if heads is not None:
        if query_rows % heads:
            raise UsageError(
                f"{named('num_attention_heads')} {heads} does not divide the {query_rows} query rows"
            )
        return query_rows // heads
    if query_rows % DEFAULT_HEAD_DIM:
        raise LladaError(
            f"cannot tell the head count of this {layout.name} checkpoint ({query_rows} query rows); "
            f"pass {named('num_attention_heads')}"
        )
    return DEFAULT_HEAD_DIM


def _count_layers(state: State, layout: Layout) -> int:
    count = 0
    while layout.source_name(f"layers.{count}.self_attn.q_proj.weight") in state:
        count += 1
    return count


def _is_tied(state: State, layout: Layout) -> bool:
    """Tied when one of embedding and head is absent or both are equal; a normed embedding never is."""
    names = [layout.source_name(n) for n in ("embed_tokens.weight", "lm_head.weight")]
    embed, head = (None if name is None else state.get(name) for name in names)
    if layout.normed_embedding:
        return False
    return embed is None or head is None or (embed.shape == head.shape and torch.equal(embed, head))


# ---------------------------------------------------------------------------
# converting the tensors


def convert_state_dict(state: State, config: ModelConfig, layout: str) -> tuple[State, ImportReport]:
    """Our state dict (float32) from a source one; refuses any tensor whose shape does not fit."""
    spec = LAYOUTS_BY_NAME[layout]
    expected = _expected_shapes(config)
    converted: State = {}
    report = ImportReport(layout, [], [], [])
    used: set[str] = set()
    for ours, shape in expected.items():
        source = spec.source_name(ours)
        if source is None:
            converted[ours] = torch.ones(shape)
            report.unit_norms.append(ours)
            continue
        if ours == "embed_tokens.weight" and source not in state and config.tie_embeddings:
            source = spec.source_name("lm_head.weight")
        if source not in state:
            report.missing.append(ours)
            continue
        tensor = state[source]
        if tensor.shape != shape:
            raise LladaError(
                f"checkpoint tensor {source} has shape {tuple(tensor.shape)} but the model needs "
                f"{tuple(shape)} for {ours}; the checkpoint is inconsistent or the head count is wrong"
            )
        converted[ours] = _transform(spec, ours, tensor.float(), config)
        report.matched.append(ours)
        used.add(source)
    if config.tie_embeddings:
        head = spec.source_name("lm_head.weight")
        if head is not None:
            used.add(head)  # the head's copy of the tied embedding
        if "embed_tokens.weight" in converted:
            converted["lm_head.weight"] = converted["embed_tokens.weight"]
    report.unexpected = sorted(name for name in state if name not in used)
    return converted, report


def _expected_shapes(config: ModelConfig) -> dict[str, torch.Size]:
    """Our parameter names and shapes; a tied head is not a tensor of its own."""
    # A real model rather than one on the meta device: meta's normal_ imports the compiler (seconds).
    shapes = {name: tensor.shape for name, tensor in Transformer(config).state_dict().items()}
    if config.tie_embeddings:
        del shapes["lm_head.weight"]
    return shapes


def _transform(spec: Layout, ours: str, tensor: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    if spec.interleaved_rope and ours.endswith(("q_proj.weight", "k_proj.weight")):
        return _pairs_to_halves(tensor, config.head_dim)
    if spec.normed_embedding and ours == "embed_tokens.weight":
        return F.rms_norm(tensor, (tensor.shape[-1],), eps=config.norm_eps)
    return tensor


def _pairs_to_halves(weight: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Reorder each head's rows from (x0, x1, x2, x3, ...) to (x0, x2, ..., x1, x3, ...)."""
    rows = weight.reshape(-1, head_dim // 2, 2, weight.shape[-1])
    return rows.transpose(1, 2).reshape(weight.shape).contiguous()


# ---------------------------------------------------------------------------
# a model, and a registry run


# Nano-LLaDA's checkpoints are diffusion models; MiniMind's are AR.
DIFFUSION_LAYOUTS = ("nano-llada",)


def load_external_model(
    path: Path, causal: bool | None, num_attention_heads: int | None = None, seq_len: int | None = None
) -> tuple[Transformer, ImportReport]:
    """The external checkpoint as our Transformer (causal: AR kind; None: as its layout says);
    refuses missing tensors."""
    state, hints = read_checkpoint(Path(path))
    if causal is None:
        causal = detect_layout(state).name not in DIFFUSION_LAYOUTS
    config, layout = infer_model_config(
        state,
        causal,
        seq_len=seq_len or int(hints.get("seq_len", 512)),
        rope_theta=hints.get("rope_theta"),
        num_attention_heads=num_attention_heads or hints.get("num_attention_heads"),
        norm_eps=hints.get("rms_norm_eps"),
    )
    converted, report = convert_state_dict(state, config, layout)
    if report.missing:
        missing = f"{len(report.missing)} tensors{_preview(report.missing)}"
        raise LladaError(f"{path} lacks {missing} of a {layout} model; is the file complete?")
    model = Transformer(config)
    model.load_state_dict(converted)
    return model.eval(), report
