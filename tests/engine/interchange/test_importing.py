"""Importing MiniMind and Nano-LLaDA state dicts (interchange/importing.py): the imported model must
compute what the original does.

Each reference forward below restates the original model in its own convention, straight from the
raw tensors: RMSNorm x * rsqrt(mean(x^2) + eps) * w, RoPE as that layout rotates, GQA attention
with a causal (or no) mask and 1/sqrt(head_dim) scaling, SwiGLU, final norm, head.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.errors import LladaError, UsageError
from llada_cli.engine.interchange.importing import convert_state_dict, infer_model_config, load_external_model
from llada_cli.engine.model.transformer import Transformer

VOCAB, HIDDEN, LAYERS, HEADS, KV_HEADS, MLP = 50, 32, 2, 4, 2, 48
HEAD_DIM = HIDDEN // HEADS
IDS = torch.tensor([[3, 17, 42, 5, 9, 0, 33, 21], [7, 7, 1, 49, 12, 30, 2, 8]])

# Per layout: the source's names, RMSNorm eps, RoPE theta and pairing, qk-norm.
MINIMIND = {
    "embed": "model.embed_tokens.weight",
    "head": "lm_head.weight",
    "final_norm": "model.norm.weight",
    "attn_norm": "model.layers.{i}.input_layernorm.weight",
    "mlp_norm": "model.layers.{i}.post_attention_layernorm.weight",
    "q": "model.layers.{i}.self_attn.q_proj.weight",
    "k": "model.layers.{i}.self_attn.k_proj.weight",
    "v": "model.layers.{i}.self_attn.v_proj.weight",
    "o": "model.layers.{i}.self_attn.o_proj.weight",
    "q_norm": "model.layers.{i}.self_attn.q_norm.weight",
    "k_norm": "model.layers.{i}.self_attn.k_norm.weight",
    "gate": "model.layers.{i}.mlp.gate_proj.weight",
    "up": "model.layers.{i}.mlp.up_proj.weight",
    "down": "model.layers.{i}.mlp.down_proj.weight",
}
MINIMIND_V1 = {
    "embed": "tok_embeddings.weight",
    "head": "output.weight",
    "final_norm": "norm.weight",
    "attn_norm": "layers.{i}.attention_norm.weight",
    "mlp_norm": "layers.{i}.ffn_norm.weight",
    "q": "layers.{i}.attention.wq.weight",
    "k": "layers.{i}.attention.wk.weight",
    "v": "layers.{i}.attention.wv.weight",
    "o": "layers.{i}.attention.wo.weight",
    "gate": "layers.{i}.feed_forward.w1.weight",
    "up": "layers.{i}.feed_forward.w3.weight",
    "down": "layers.{i}.feed_forward.w2.weight",
}
LAYOUTS = {
    "minimind": dict(names=MINIMIND, eps=1e-5, theta=1e6, interleaved=False, qk_norm=False),
    "minimind-qk-norm": dict(names=MINIMIND, eps=1e-6, theta=1e6, interleaved=False, qk_norm=True),
    "minimind-v1": dict(names=MINIMIND_V1, eps=1e-5, theta=1e4, interleaved=True, qk_norm=False),
}


# ---------------------------------------------------------------------------
# source checkpoints with known tensors


def minimind_state(layout: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A tied GQA model in the layout's names; norm weights away from 1 so that they matter."""
    spec = LAYOUTS[layout]
    names, gen = spec["names"], torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    embed = rand(VOCAB, HIDDEN, scale=0.2)
    state = {names["embed"]: embed, names["head"]: embed, names["final_norm"]: 1 + rand(HIDDEN)}
    for i in range(LAYERS):
        layer = {
            "attn_norm": 1 + rand(HIDDEN),
            "mlp_norm": 1 + rand(HIDDEN),
            "q": rand(HEADS * HEAD_DIM, HIDDEN),
            "k": rand(KV_HEADS * HEAD_DIM, HIDDEN),
            "v": rand(KV_HEADS * HEAD_DIM, HIDDEN),
            "o": rand(HIDDEN, HEADS * HEAD_DIM),
            "gate": rand(MLP, HIDDEN),
            "up": rand(MLP, HIDDEN),
            "down": rand(HIDDEN, MLP),
        }
        if spec["qk_norm"]:
            layer |= {"q_norm": 1 + rand(HEAD_DIM), "k_norm": 1 + rand(HEAD_DIM)}
        state |= {names[key].format(i=i): value for key, value in layer.items()}
    return state


def nano_llada_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Nano-LLaDA: no GQA, no norm weights, an untied head."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    state = {"token_emb.weight": rand(VOCAB, HIDDEN), "lm_head.weight": rand(VOCAB, HIDDEN, scale=0.2)}
    for i in range(LAYERS):
        for name in ("c_q", "c_k", "c_v", "c_proj"):
            state[f"blocks.{i}.attn.{name}.weight"] = rand(HIDDEN, HIDDEN)
        state[f"blocks.{i}.mlp.gate_proj.weight"] = rand(MLP, HIDDEN)
        state[f"blocks.{i}.mlp.up_proj.weight"] = rand(MLP, HIDDEN)
        state[f"blocks.{i}.mlp.down_proj.weight"] = rand(HIDDEN, MLP)
    return state


# ---------------------------------------------------------------------------
# the originals' forward passes, written out directly


def rms(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x if weight is None else x * weight


def angles(length: int, dim: int, theta: float, scaling: float = 1.0) -> torch.Tensor:
    """Position times frequency, (L, dim/2). scaling > 1: MiniMind's YaRN (rope_scaling dict:
    original length 2048, beta_fast 32, beta_slow 1, attention factor 1), on at every position
    because MiniMind's 32768-entry table always exceeds 2048."""
    inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2).float() / dim)
    if scaling > 1:

        def index(turns: float) -> float:  # pair j turns 2048 * theta^(-2j/dim) / 2pi times over 2048
            return dim * math.log(2048 / (turns * 2 * math.pi)) / (2 * math.log(theta))

        low, high = max(math.floor(index(32)), 0), min(math.ceil(index(1)), dim // 2 - 1)
        ramp = ((torch.arange(dim // 2).float() - low) / max(high - low, 0.001)).clamp(0, 1)
        inv_freq = inv_freq * (1 - ramp + ramp / scaling)
    return torch.outer(torch.arange(length).float(), inv_freq)


def rope_half_split(x: torch.Tensor, theta: float, scaling: float = 1.0) -> torch.Tensor:
    """MiniMind2 / current MiniMind / Nano-LLaDA: pairs (x[j], x[j + d/2]); x is (B, H, L, D)."""
    a = angles(x.shape[2], x.shape[3], theta, scaling)
    cos, sin = torch.cat((a.cos(), a.cos()), -1), torch.cat((a.sin(), a.sin()), -1)
    half = x.shape[3] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin


def rope_interleaved(x: torch.Tensor, theta: float) -> torch.Tensor:
    """MiniMind v1: pairs (x[2j], x[2j+1]) as complex numbers times e^(i * angle)."""
    a = angles(x.shape[2], x.shape[3], theta)
    pairs = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(a), a)).flatten(-2)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """Each kv head serves the consecutive group of query heads it was repeated for."""
    repeat = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        length = q.shape[2]
        scores = scores + torch.full((length, length), float("-inf")).triu(1)
    return scores.softmax(-1) @ v


def minimind_logits(
    state: dict[str, torch.Tensor], layout: str, causal: bool = True, rope_scaling: float = 1.0
) -> torch.Tensor:
    spec = LAYOUTS[layout]
    names, eps, theta = spec["names"], spec["eps"], spec["theta"]
    rope = rope_interleaved if spec["interleaved"] else partial(rope_half_split, scaling=rope_scaling)
    batch, length = IDS.shape

    def w(key: str, i: int = 0) -> torch.Tensor:
        return state[names[key].format(i=i)].float()

    def heads(x: torch.Tensor, count: int) -> torch.Tensor:
        return x.view(batch, length, count, HEAD_DIM)

    x = w("embed")[IDS]
    for i in range(LAYERS):
        h = rms(x, w("attn_norm", i), eps)
        q, k, v = (heads(h @ w(name, i).T, n) for name, n in (("q", HEADS), ("k", KV_HEADS), ("v", KV_HEADS)))
        if spec["qk_norm"]:  # per head, before RoPE
            q, k = rms(q, w("q_norm", i), eps), rms(k, w("k_norm", i), eps)
        q, k, v = rope(q.transpose(1, 2), theta), rope(k.transpose(1, 2), theta), v.transpose(1, 2)
        x = x + attend(q, k, v, causal).transpose(1, 2).reshape(batch, length, HIDDEN) @ w("o", i).T
        h = rms(x, w("mlp_norm", i), eps)
        x = x + (F.silu(h @ w("gate", i).T) * (h @ w("up", i).T)) @ w("down", i).T
    return rms(x, w("final_norm"), eps) @ w("head").T


def nano_llada_logits(state: dict[str, torch.Tensor], causal: bool = False, eps: float = 1e-5):
    batch, length = IDS.shape

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, length, HEADS, HEAD_DIM).transpose(1, 2)

    x = rms(state["token_emb.weight"][IDS], None, eps)
    for i in range(LAYERS):
        p = f"blocks.{i}."
        h = rms(x, None, eps)
        q, k, v = (heads(h @ state[f"{p}attn.{n}.weight"].T) for n in ("c_q", "c_k", "c_v"))
        q, k = rms(rope_half_split(q, 1e6), None, eps), rms(rope_half_split(k, 1e6), None, eps)  # after RoPE
        out = attend(q, k, v, causal).transpose(1, 2).reshape(batch, length, HIDDEN)
        x = x + out @ state[f"{p}attn.c_proj.weight"].T
        h = rms(x, None, eps)
        gate, up = h @ state[f"{p}mlp.gate_proj.weight"].T, h @ state[f"{p}mlp.up_proj.weight"].T
        x = x + (F.silu(gate) * up) @ state[f"{p}mlp.down_proj.weight"].T
    return rms(x, None, eps) @ state["lm_head.weight"].T


def unprefixed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The names read_checkpoint gives: without MiniMind's leading "model."."""
    return {name.removeprefix("model."): tensor for name, tensor in state.items()}


def imported_logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS)


# ---------------------------------------------------------------------------
# MiniMind layouts


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("form", ["pt-half", "safetensors-untied-copy-dropped", "wrapped"])
def test_minimind_import_matches_the_original_forward(tmp_path, layout, form):
    state = minimind_state(layout)
    names = LAYOUTS[layout]["names"]
    if form == "pt-half":  # what MiniMind's trainer saves: every tensor .half(), both tied names
        state = {k: v.half() for k, v in state.items()}
        path = tmp_path / "pretrain_512.pth"
        torch.save(state, path)
    elif form == "safetensors-untied-copy-dropped":  # shared tensors are saved once
        path = tmp_path / "model.safetensors"
        save_file({k: v for k, v in state.items() if k != names["head"]}, str(path))
    else:  # a resume file from DDP + torch.compile
        path = tmp_path / "resume.pt"
        wrapped = {f"module._orig_mod.{k}": v for k, v in state.items()}
        torch.save({"model": wrapped, "optimizer": {"state": {}}, "epoch": 1, "step": 7}, path)
    heads = None if LAYOUTS[layout]["qk_norm"] else HEADS  # without q_norm shapes cannot tell

    model, report = load_external_model(path, causal=True, num_attention_heads=heads)

    assert report.layout == layout and not report.missing and not report.unexpected
    assert len(report.matched) == 1 + 1 + LAYERS * (9 + 2 * LAYOUTS[layout]["qk_norm"])
    torch.testing.assert_close(imported_logits(model), minimind_logits(state, layout), atol=1e-5, rtol=0)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_architecture_is_read_off_names_and_shapes(layout):
    state = unprefixed(minimind_state(layout))
    config, found = infer_model_config(state, causal=False, num_attention_heads=HEADS)
    assert found == layout
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (VOCAB, HIDDEN, LAYERS)
    assert (config.num_attention_heads, config.kv_heads, config.mlp_size) == (HEADS, KV_HEADS, MLP)
    assert config.tie_embeddings and config.qk_norm == LAYOUTS[layout]["qk_norm"] and not config.causal
    assert (config.norm_eps, config.rope_theta) == (LAYOUTS[layout]["eps"], LAYOUTS[layout]["theta"])


def test_head_count_comes_from_q_norm_without_help():
    config, _ = infer_model_config(unprefixed(minimind_state("minimind-qk-norm")), causal=True)
    assert (config.num_attention_heads, config.kv_heads) == (HEADS, KV_HEADS)
    with pytest.raises(UsageError, match="`num_attention_heads` 2 does not match"):
        infer_model_config(unprefixed(minimind_state("minimind-qk-norm")), causal=True, num_attention_heads=2)


def test_head_count_that_shapes_cannot_tell_must_be_given():
    with pytest.raises(LladaError, match="pass `num_attention_heads`"):
        infer_model_config(unprefixed(minimind_state("minimind")), causal=True)


# ---------------------------------------------------------------------------
# RoPE scaling (--inference-rope-scaling) as MiniMind computes it


@pytest.mark.parametrize("head_dim, theta", [(8, 1e6), (64, 1e6), (64, 1e4)])
@pytest.mark.parametrize("factor", [4.0, 16.0])
@pytest.mark.parametrize("seq_len", [128, 4096])  # the ramp must not depend on the training length
def test_yarn_cos_sin_match_minimind(head_dim, theta, factor, seq_len):
    config = ModelConfig(hidden_size=2 * head_dim, num_attention_heads=2, seq_len=seq_len)
    model = Transformer(replace(config, rope_theta=theta, rope_scaling=factor))
    positions = torch.arange(3000)  # within and past MiniMind's original 2048

    cos, sin = model.rope(positions)

    a = angles(len(positions), head_dim, theta, factor)
    torch.testing.assert_close(cos, torch.cat((a.cos(), a.cos()), -1), atol=1e-4, rtol=0)
    torch.testing.assert_close(sin, torch.cat((-a.sin(), a.sin()), -1), atol=1e-4, rtol=0)
    unscaled = Transformer(replace(config, rope_theta=theta)).inv_freq
    ratio = model.inv_freq / unscaled  # fast pairs kept, slow ones divided by the factor
    assert ratio[0] == 1 and ratio[-1] == pytest.approx(1 / factor)


@pytest.mark.parametrize("layout", ["minimind", "minimind-qk-norm"])
@pytest.mark.parametrize("causal", [True, False])
def test_minimind_import_with_rope_scaling_matches_the_original_forward(tmp_path, layout, causal):
    state = minimind_state(layout)
    torch.save(state, tmp_path / "full_sft_512.pth")
    heads = None if LAYOUTS[layout]["qk_norm"] else HEADS
    imported, _ = load_external_model(tmp_path / "full_sft_512.pth", causal=causal, num_attention_heads=heads)
    scaled = Transformer(replace(imported.config, rope_scaling=4.0))  # as a continued run rebuilds it
    scaled.load_state_dict(imported.state_dict())

    expected = minimind_logits(state, layout, causal=causal, rope_scaling=4.0)

    torch.testing.assert_close(imported_logits(scaled), expected, atol=1e-5, rtol=0)
    assert (expected - minimind_logits(state, layout, causal=causal)).abs().max() > 1e-3  # scaling mattered


# ---------------------------------------------------------------------------
# Nano-LLaDA


def test_nano_llada_import_matches_the_original_forward(tmp_path):
    state = nano_llada_state()
    path = tmp_path / "diffusion_from_ar.pt"
    args = {"num_attention_heads": HEADS, "rms_norm_eps": 1e-5, "rope_theta": 1e6, "seq_len": 16, "data": "x"}
    torch.save({"model_state_dict": state, "optimizer_state_dict": {}, "step": 3, "args": args}, path)

    model, report = load_external_model(path, causal=False)  # the head count comes from "args"

    assert report.layout == "nano-llada" and not report.missing and not report.unexpected
    assert len(report.matched) == 2 + LAYERS * 7 and len(report.unit_norms) == 1 + LAYERS * 4
    assert not model.config.tie_embeddings and model.config.seq_len == 16
    torch.testing.assert_close(imported_logits(model), nano_llada_logits(state), atol=1e-5, rtol=0)


def test_nano_llada_ar_model_is_causal_when_imported_as_ar(tmp_path):
    path = tmp_path / "minimind_pretrain_state_dict.pt"
    torch.save(nano_llada_state(seed=1), path)
    model, _ = load_external_model(path, causal=True, num_attention_heads=HEADS)
    expected = nano_llada_logits(nano_llada_state(seed=1), causal=True)
    torch.testing.assert_close(imported_logits(model), expected, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------
# what gets refused (reading the file itself: test_files.py), and the report


def test_report_lists_matched_missing_and_unexpected():
    state = minimind_state("minimind-v1")
    del state["layers.1.feed_forward.w3.weight"]
    state["layers.0.attention.mask"] = torch.zeros(1, 1, 8, 8)  # MiniMind v1 saved its causal mask
    config, layout = infer_model_config(state, causal=True, num_attention_heads=HEADS)

    converted, report = convert_state_dict(state, config, layout)

    assert report.missing == ["layers.1.mlp.up_proj.weight"]
    assert report.unexpected == ["layers.0.attention.mask"]
    assert "layers.0.mlp.up_proj.weight" in report.matched and "lm_head.weight" not in report.matched
    assert converted["lm_head.weight"] is converted["embed_tokens.weight"]
    assert report.summary() == (
        "minimind-v1: matched 19 tensors, 1 missing (layers.1.mlp.up_proj.weight), "
        "1 unexpected (layers.0.attention.mask)"
    )


def test_missing_tensors_refuse_the_import(tmp_path):
    state = minimind_state("minimind-qk-norm")
    del state["model.layers.0.self_attn.k_norm.weight"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(LladaError, match=r"lacks 1 tensors \(layers.0.self_attn.k_norm.weight\)"):
        load_external_model(tmp_path / "partial.pt", causal=True)


def test_shape_mismatch_is_refused_naming_the_tensor_and_both_shapes():
    state = unprefixed(minimind_state("minimind"))
    state["layers.1.self_attn.k_proj.weight"] = torch.zeros(HEADS * HEAD_DIM, HIDDEN)
    config, layout = infer_model_config(state, causal=True, num_attention_heads=HEADS)
    with pytest.raises(LladaError) as err:
        convert_state_dict(state, config, layout)
    message = str(err.value)
    assert "layers.1.self_attn.k_proj.weight" in message and "\n" not in message
    assert "(32, 32)" in message and "(16, 32)" in message
