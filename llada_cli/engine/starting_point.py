"""The model and tokenizer a training stage starts from: fresh, an AR run continued as diffusion,
an SFT base, or an external MiniMind / Nano-LLaDA checkpoint (docs/algorithms.md section 11)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .checkpoint import load_run
from .config import ModelConfig
from .data.sources import tokenizer_sample
from .errors import UsageError, named
from .imported_runs import external_run, is_checkpoint_file
from .model import Transformer, grow_vocab
from .registry import Registry
from .tokenizer import Tokenizer

# What a continued run inherits from its parent; a different value given by the user is an error.
INHERITED_SHAPE = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_kv_heads",
    "intermediate_size",
    "rope_theta",
    "qk_norm",
    "tie_embeddings",
    "norm_eps",
    "hidden_act",
)


@dataclass
class Parent:
    label: str  # name@step of a run, or the path of an external checkpoint
    kind: str
    model: Transformer
    tokenizer: Tokenizer


def load_parent(registry: Registry, spec: str, tokenizer_path: Path | None) -> Parent:
    """A registry run, or an external state dict given by its path (AR weights, with its tokenizer)."""
    if is_checkpoint_file(spec):
        path = Path(spec).expanduser()
        loaded = external_run(path, tokenizer_path)
        return Parent(str(path), loaded.kind, loaded.model.train(), loaded.tokenizer)
    loaded = load_run(*registry.resolve(spec))
    if tokenizer_path is not None and not Tokenizer.load(tokenizer_path).same_vocabulary(loaded.tokenizer):
        raise UsageError(
            f"{named('tokenizer')} {tokenizer_path} is not the tokenizer of run '{spec}', "
            "which brings its own: drop the option"
        )
    return Parent(loaded.label, loaded.kind, loaded.model, loaded.tokenizer)


def rebuilt(model: Transformer, config: ModelConfig) -> Transformer:
    """The same weights under another config of the same shape (attention rule, RoPE scaling, context)."""
    fresh = Transformer(config)
    fresh.load_state_dict(model.state_dict())
    return fresh


def check_inherited_shape(
    parent: ModelConfig, wanted: ModelConfig, given: frozenset[str], label: str
) -> None:
    for name in INHERITED_SHAPE:
        if name in given and getattr(wanted, name) != getattr(parent, name):
            raise UsageError(
                f"{named(name)} {getattr(wanted, name)} does not match run '{label}' "
                f"({name} = {getattr(parent, name)}); drop it"
            )


def continued_as_diffusion(parent: Parent, logit_shift: bool) -> tuple[Transformer, Tokenizer]:
    """An AR model with <|mask|> added and attention turned bidirectional; with `logit_shift` the
    state at i - 1 keeps predicting token i, as it did in the AR model (docs/algorithms.md 11)."""
    if parent.kind != "ar":
        raise UsageError(f"{named('init_from')} {parent.label}: that run is {parent.kind}, not an AR run")
    tokenizer = parent.tokenizer.with_mask_token()
    model = parent.model
    if tokenizer.vocab_size > model.config.vocab_size:
        model = grow_vocab(model, tokenizer.vocab_size)
    return rebuilt(model, replace(model.config, causal=False, logit_shift=logit_shift)), tokenizer


def fresh_tokenizer(
    registry: Registry,
    kind: str,
    tokenizer_path: Path | None,
    data: str,
    jsonl_field: str,
    vocab_size: int,
    sample_mb: float,
) -> Tokenizer:
    """The given tokenizer.json, or BPE trained on a sample of the data; diffusion adds <|mask|>."""
    if tokenizer_path is not None:
        tokenizer = Tokenizer.load(tokenizer_path)
    else:
        sample = tokenizer_sample(data, registry.data_dir, jsonl_field, int(sample_mb * 2**20))
        tokenizer = Tokenizer.train(sample, vocab_size)
    return tokenizer.with_mask_token() if kind == "diffusion" else tokenizer
