"""The model and tokenizer a training stage starts from: fresh, an AR run continued as diffusion,
an SFT base, or an external MiniMind / Nano-LLaDA checkpoint (docs/algorithms.md section 11); and,
for a run that already exists, the model its checkpoint loads into."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..config import Kind, ModelConfig
from ..data.sources import tokenizer_sample
from ..errors import UsageError, named
from ..interchange.imported_runs import external_run, is_checkpoint_file
from ..model.tokenizer import Tokenizer
from ..model.transformer import Transformer, grow_vocab
from ..runs.folder import Run
from ..runs.loaded import load_run
from ..runs.registry import Registry
from .request import StageRequest

INFERENCE_ROPE_FACTOR = 16.0  # MiniMind's and Nano-LLaDA's YaRN factor

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
class Start:
    """The model and tokenizer a run starts from, and the run (or file) it continues, if any."""

    model: Transformer
    tokenizer: Tokenizer
    parent: str | None = None


def starting_point(registry: Registry, request: StageRequest, tokenizer: Tokenizer | None = None) -> Start:
    """A new run's start: fresh, an AR run continued as diffusion, or an SFT base. `tokenizer`: the
    one the main process trained (the other processes of a distributed run read it back)."""
    if request.parent is None:
        tokenizer = tokenizer or fresh_tokenizer(
            registry,
            request.resolved_kind,
            request.tokenizer.path,
            request.data.data,
            request.data.jsonl_field,
            request.start.vocab_size,
            request.start.tokenizer_sample_mb,
        )
        config = replace(
            request.model,
            vocab_size=tokenizer.vocab_size,
            seq_len=max(request.model.seq_len, request.start.max_position_embeddings or 0),
            causal=request.kind == "ar",
            logit_shift=request.kind == "diffusion"
            and request.objective_config().shifts_logits(from_ar=False),
            rope_scaling=INFERENCE_ROPE_FACTOR if request.start.inference_rope_scaling else 1.0,
        )
        return Start(Transformer(config), tokenizer)
    parent = load_parent(registry, request.parent, request.tokenizer.path)
    check_inherited_shape(parent.model.config, request.model, request.given, parent.label)
    model, parent_tokenizer = parent.model, parent.tokenizer
    if request.stage == "pretrain":
        shift = request.objective_config().shifts_logits(from_ar=True)
        model, parent_tokenizer = continued_as_diffusion(parent, shift)
    if request.start.inference_rope_scaling:
        model = rebuilt(model, replace(model.config, rope_scaling=INFERENCE_ROPE_FACTOR))
    asked = request.start.max_position_embeddings
    if asked is not None and asked < model.config.seq_len:
        raise UsageError(
            f"{named('max_position_embeddings')} {asked} is shorter than the context of '{parent.label}' "
            f"({model.config.seq_len} tokens), which a run that starts from it keeps: drop it"
        )
    # longer rows than the parent's extend its context (Nano-LLaDA: SFT at 512 after pretraining at 256)
    context = max(request.seq_len or 0, asked or 0)
    if context > model.config.seq_len:
        model = rebuilt(model, replace(model.config, seq_len=context))
    if "dropout" in request.given:  # a training choice, not part of the inherited shape
        model = rebuilt(model, replace(model.config, dropout=request.model.dropout))
    model.train()
    return Start(model, tokenizer or parent_tokenizer, parent.label)


def reopened(registry: Registry, request: StageRequest, run: Run) -> Start:
    """An existing run: its tokenizer, and its model (a checkpoint's weights load later; a run
    stopped before its first checkpoint starts again from the same initial weights)."""
    tokenizer = Tokenizer.load(run.tokenizer_path)
    info = run.info()
    if run.latest_step() is not None:
        return Start(Transformer(info.model), tokenizer, info.parent)
    initial = starting_point(registry, request, tokenizer).model
    return Start(rebuilt(initial, info.model), tokenizer, info.parent)


@dataclass
class Parent:
    label: str  # name@step of a run, or the path of an external checkpoint
    kind: Kind
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
    kind: Kind,
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
