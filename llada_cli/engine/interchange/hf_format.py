"""Hugging Face `transformers` folders: a run exported as one, and one read back as a model.

llada's Transformer is a Llama (no biases, RMSNorm, half-split RoPE, SwiGLU), or a Qwen3 when it
normalises queries and keys, so an AR run loads with `AutoModelForCausalLM.from_pretrained(OUT)`
and no custom code. The folder holds config.json (plus a `llada` entry: the kind, the mask
token, the attention and the logit shift), model.safetensors under the HF names (`model.` before ours),
tokenizer.json, tokenizer_config.json with the ChatML chat template, and generation_config.json.
A diffusion run exports the same files and a model card: transformers would run it causally,
so it is for `llada runs import`, which reads such a folder back to the same logits.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..config import Kind, ModelConfig
from ..errors import LladaError, UsageError, named
from ..model.checkpoint import write_safetensors
from ..model.tokenizer import Tokenizer
from ..model.transformer import YARN_BETA_FAST, YARN_BETA_SLOW, Transformer
from ..runs.loaded import LoadedRun
from ..typed import expected, shown
from ..vocabulary import EOS, IM_END, MASK

WEIGHTS = "model.safetensors"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MODEL_CARD = """# {name}

A masked-diffusion language model trained with llada, LLaDA-style ({parameters:,} parameters,
context {seq_len}). Its attention is {attention}, so
`transformers` cannot sample it; llada can:

```bash
llada runs import {folder} --name {name}
llada sample {name} --chat --prompt "Hello"
```

The mask token is `{mask}` (id {mask_id}); the chat template is ChatML. {shift}
"""


def check_exportable(config: ModelConfig) -> None:
    """Refuse a model transformers would compute differently: only YaRN can differ.

    The ramp's slow edge is the pair whose wave turns YARN_BETA_SLOW times over the original
    length (model/transformer.py, pair_turning). llada clamps it to the last pair as MiniMind does,
    transformers to head_dim - 1: past the last pair the two ramps have different slopes.
    """
    if config.rope_scaling <= 1:
        return
    dim, turns = config.head_dim, config.rope_original_max_position / (YARN_BETA_SLOW * 2 * math.pi)
    slow_edge = dim * math.log(turns) / (2 * math.log(config.rope_theta))
    if not 0 <= slow_edge <= dim // 2 - 1:
        raise UsageError(
            f"YaRN scaling ({named('inference_rope_scaling')}) with {named('rope_theta')} "
            f"{config.rope_theta:g} at head size {dim} has no transformers equivalent: its ramp ends past "
            "the last frequency pair, where transformers' YaRN differs from llada's"
        )


def hf_config(config: ModelConfig, tokenizer: Tokenizer, kind: Kind) -> dict[str, Any]:
    """config.json: Llama's fields, Qwen3's when queries and keys are normalised."""
    architecture, model_type = (
        ("Qwen3ForCausalLM", "qwen3") if config.qk_norm else ("LlamaForCausalLM", "llama")
    )
    values: dict[str, Any] = {
        "architectures": [architecture],
        "model_type": model_type,
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.mlp_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "num_key_value_heads": config.kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": config.hidden_act,
        "max_position_embeddings": config.seq_len,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_theta,
        "tie_word_embeddings": config.tie_embeddings,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "bos_token_id": None,
        "eos_token_id": [tokenizer.eos_id, tokenizer.im_end_id],
        "pad_token_id": tokenizer.eos_id,
        "torch_dtype": "float32",
        "llada": {
            "kind": kind,
            "attention": "causal" if config.causal else "bidirectional",
            "mask_token_id": tokenizer.mask_id,
            "seq_len": config.seq_len,
            "logit_shift": config.logit_shift,
        },
    }
    if config.rope_scaling > 1:  # YaRN as MiniMind applies it: attention factor 1, ramp by beta 32 / 1
        values["rope_scaling"] = {
            "rope_type": "yarn",
            "factor": config.rope_scaling,
            "original_max_position_embeddings": config.rope_original_max_position,
            "beta_fast": YARN_BETA_FAST,
            "beta_slow": YARN_BETA_SLOW,
            "attention_factor": 1.0,
        }
        # some transformers 4.x releases take the factor as this length over the original one
        values["max_position_embeddings"] = round(config.rope_original_max_position * config.rope_scaling)
    return values


def export_hf(loaded: LoadedRun, out: Path, overwrite: bool = False) -> Path:
    """Write the run's weights, tokenizer and configs as a transformers folder at `out`."""
    _check_target(out, overwrite)
    check_exportable(loaded.model.config)
    target = out.expanduser().resolve()  # "." has no name to put the staging folder beside
    staging = target.with_name(f".{target.name}.partial")  # renamed into place once complete
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _write_folder(staging, loaded.model, loaded.tokenizer, loaded.kind, loaded.info.name)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _check_target(out: Path, overwrite: bool) -> None:
    """A new or empty folder; with `overwrite`, also an earlier export, never other files."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not out.is_dir():
        raise UsageError(f"{out} is a file; export writes a folder: choose a new folder name")
    if not overwrite:
        raise UsageError(f"{out} exists and is not empty; choose another folder or give {named('overwrite')}")
    if not is_hf_folder(out):
        raise UsageError(
            f"{out} is not an earlier export (no config.json); {named('overwrite')} replaces only those"
        )


def _write_folder(folder: Path, model: Transformer, tokenizer: Tokenizer, kind: Kind, name: str) -> None:
    config = model.config
    tensors = {
        f"model.{key}" if key != "lm_head.weight" else key: value.contiguous()
        for key, value in model.state_dict().items()
    }
    if config.tie_embeddings:
        tensors.pop("lm_head.weight")
    write_safetensors(tensors, folder / WEIGHTS, {"format": "pt"})  # with a plain write's mode, not 0600
    _write_json(folder / "config.json", hf_config(config, tokenizer, kind))
    tokenizer.save(folder / "tokenizer.json")
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": IM_END,
            "pad_token": EOS,
            "bos_token": None,
            "unk_token": None,
            **({"mask_token": MASK} if tokenizer.mask_id is not None else {}),
            "model_max_length": config.seq_len,
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
        },
    )
    _write_json(
        folder / "generation_config.json",
        {"eos_token_id": [tokenizer.eos_id, tokenizer.im_end_id], "pad_token_id": tokenizer.eos_id},
    )
    if kind == "diffusion":
        card = MODEL_CARD.format(
            name=name,
            parameters=model.num_parameters,
            seq_len=config.seq_len,
            attention="bidirectional",
            folder=folder.name.removeprefix(".").removesuffix(".partial"),
            mask=MASK,
            mask_id=tokenizer.mask_id,
            shift=(
                "The logits at position i predict the token at i + 1 (`logit_shift`: the hidden "
                "state before a masked slot predicts it, as in Dream)."
                if config.logit_shift
                else "The logits at position i predict the token at i (no logit shift, as LLaDA)."
            ),
        )
        (folder / "README.md").write_text(card, encoding="utf-8")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------ reading one back


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def load_hf_folder(path: Path, kind: Kind | None = None) -> tuple[Transformer, Kind]:
    """The model of a transformers Llama/Qwen3 folder (one llada exported, or any of that shape),
    and its kind: the folder's `llada` entry says, else `kind`, else AR."""
    try:
        values = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LladaError(f"{path / 'config.json'}: not a readable JSON config ({error})") from None
    llada = values.get("llada", {}) if isinstance(values, dict) else None
    if not isinstance(values, dict) or not isinstance(llada, dict):
        raise LladaError(f"{path / 'config.json'}: not a model config (a JSON object, its llada entry too)")
    if llada.get("kind", kind or "ar") not in ("ar", "diffusion"):
        raise LladaError(f"{path / 'config.json'}: llada.kind {shown(llada['kind'])} is not ar or diffusion")
    if values.get("model_type") not in ("llama", "qwen3", "mistral"):
        raise LladaError(
            f"{path}: model_type '{values.get('model_type')}' is not a Llama-style model llada can read"
        )
    kind = kind or llada.get("kind") or "ar"
    config = _model_config(values, kind, path)
    state = _folder_state(path)
    state = {key.removeprefix("model."): tensor for key, tensor in state.items()}
    if config.tie_embeddings:
        state.setdefault("lm_head.weight", state["embed_tokens.weight"])
    model = Transformer(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise LladaError(
            f"{path}: weights do not match its config.json: {str(error).splitlines()[-1].strip()}"
        ) from None
    return model.eval(), kind


# The config.json entries llada reads, with the type each must have.
HF_TYPES: dict[str, Any] = {
    "vocab_size": int,
    "hidden_size": int,
    "num_hidden_layers": int,
    "num_attention_heads": int,
    "num_key_value_heads": int | None,
    "intermediate_size": int | None,
    "head_dim": int | None,
    "max_position_embeddings": int,
    "rms_norm_eps": float,
    "rope_theta": float | None,
    "tie_word_embeddings": bool,
}


def _model_config(values: dict[str, Any], kind: Kind, path: Path) -> ModelConfig:
    for name, hint in HF_TYPES.items():
        if name in values and (what := expected(values[name], hint)) is not None:
            raise LladaError(f"{path / 'config.json'}: {name} must be {what}, got {shown(values[name])}")
    if values.get("attention_bias") or values.get("mlp_bias"):
        raise LladaError(f"{path}: biases in attention or MLP; llada's model has none")
    if values.get("sliding_window") and values.get("use_sliding_window", True):
        raise LladaError(f"{path}: sliding-window attention; llada's attention sees the whole row")
    heads, hidden = values.get("num_attention_heads"), values.get("hidden_size")
    if values.get("head_dim") and heads and hidden and values["head_dim"] * heads != hidden:
        raise LladaError(f"{path}: head_dim {values['head_dim']} is not hidden_size / num_attention_heads")
    rope_theta, rope_scaling, rope_original = _rope(values, path)
    llada = values.get("llada", {})
    try:
        shape = dict(
            vocab_size=values["vocab_size"],
            hidden_size=values["hidden_size"],
            num_hidden_layers=values["num_hidden_layers"],
            num_attention_heads=values["num_attention_heads"],
            num_kv_heads=values.get("num_key_value_heads"),
            intermediate_size=values.get("intermediate_size"),
            seq_len=llada.get("seq_len") or values.get("max_position_embeddings", 2048),
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            rope_original_max_position=rope_original,
            tie_embeddings=bool(values.get("tie_word_embeddings", False)),
            qk_norm=values.get("model_type") == "qwen3",
            norm_eps=values.get("rms_norm_eps", 1e-6),
            hidden_act=values.get("hidden_act", "silu"),
            causal=kind == "ar",
            logit_shift=kind == "diffusion" and bool(llada.get("logit_shift", False)),
        )
    except KeyError as missing:
        raise LladaError(f"{path / 'config.json'} lacks {missing}") from None
    try:
        return ModelConfig(**shape)
    except UsageError as error:  # a value out of its bounds
        raise LladaError(f"{path / 'config.json'}: {error}") from None


def _rope(values: dict[str, Any], path: Path) -> tuple[float, float, int]:
    """RoPE base, YaRN factor and original length. transformers 5 nests them all in
    `rope_parameters`; earlier releases keep `rope_theta` apart and the scaling in `rope_scaling`."""
    rope = values.get("rope_parameters") or values.get("rope_scaling") or {}
    theta = float(values.get("rope_theta") or rope.get("rope_theta") or 10000.0)
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    if rope_type == "default":
        return theta, 1.0, 2048
    as_minimind = (
        rope_type == "yarn"
        and rope.get("factor")
        and rope.get("attention_factor") == 1
        and (rope.get("beta_fast") or YARN_BETA_FAST) == YARN_BETA_FAST
        and (rope.get("beta_slow") or YARN_BETA_SLOW) == YARN_BETA_SLOW
        and rope.get("truncate", True)
    )
    if not as_minimind:
        raise LladaError(
            f"{path}: RoPE scaling '{rope_type}' (attention factor {rope.get('attention_factor')}) has no "
            f"llada equivalent: llada scales only as MiniMind's YaRN (attention factor 1, betas 32 and 1)"
        )
    original = rope.get("original_max_position_embeddings") or values.get("max_position_embeddings", 2048)
    return theta, float(rope["factor"]), int(original)


def _folder_state(path: Path) -> dict[str, torch.Tensor]:
    """model.safetensors, or the shards its index names."""
    if (path / WEIGHTS).is_file():
        return load_file(str(path / WEIGHTS))
    index = path / f"{WEIGHTS}.index.json"
    if not index.is_file():
        raise LladaError(f"{path}: no {WEIGHTS} (or sharded index) in the folder")
    shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        state.update(load_file(str(path / shard)))
    return state
