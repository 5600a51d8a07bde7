"""The model's shape and the training loop's settings: options declared once (engine/options.py).

Saved into run.json as dicts (engine/runs/record.py reads them back).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from .errors import UsageError, named
from .options import check_options, option
from .schedules import LR_SCHEDULES

# The two kinds of model a run trains, and the stages of the work (runs/record.py adds "imported").
Kind = Literal["ar", "diffusion"]
Stage = Literal["pretrain", "sft", "dpo", "grpo"]

# where metrics go besides metrics.jsonl (training/loggers.py opens them)
LOGGERS = ("jsonl", "tensorboard", "wandb")

DTYPES = ("auto", "fp32", "bf16", "fp16")
# The MLP's gate activation (SwiGLU with silu, the default; Nano-LLaDA's --hidden-act): the
# torch.nn.functional function of that name (model/transformer.py), named here so that no torch is loaded.
ACTIVATIONS = ("silu", "gelu", "relu")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 6400  # from the tokenizer
    hidden_size: int = option(512, "Hidden width.", at_least=1)
    num_hidden_layers: int = option(8, "Transformer blocks.", at_least=1)
    num_attention_heads: int = option(8, "Query heads.", at_least=1)
    num_kv_heads: int | None = option(
        None, "Key/value heads (GQA; default: as many as query heads).", at_least=1
    )
    intermediate_size: int | None = option(
        None, "SwiGLU width (default: 8/3 of the hidden width, rounded up to 64).", at_least=1
    )
    seq_len: int = option(
        256,
        "The model's context and training row length (a longer context: `max_position_embeddings`).",
        aliases=("max_seq_len",),
        at_least=2,
    )
    rope_theta: float = option(1e6, "RoPE base.", above=0)
    rope_scaling: float = 1.0  # >1: YaRN-style stretch for generating past seq_len
    rope_original_max_position: int = 2048  # YaRN's original length: MiniMind's, whatever seq_len is
    tie_embeddings: bool = option(False, "Share the embedding and the output head.", negatable=True)
    qk_norm: bool = option(False, "RMSNorm on queries and keys.", negatable=True)
    norm_eps: float = option(1e-5, "Epsilon of every RMSNorm.", aliases=("rms_norm_eps",), above=0)
    hidden_act: str = option("silu", "Activation of the MLP's gate.", choices=ACTIVATIONS)
    dropout: float = option(
        0.0, "Dropout on attention weights and MLP outputs, in training.", at_least=0, below=1
    )
    causal: bool = True  # True for the AR kind, False for diffusion
    # Diffusion only: the hidden state at i - 1 predicts token i (Dream's shift, kept from the AR
    # weights a diffusion run starts from); False: position i predicts token i (LLaDA).
    logit_shift: bool = False

    def __post_init__(self) -> None:
        check_options(self)
        if self.hidden_size % self.num_attention_heads:
            raise UsageError(
                f"{named('hidden_size')} {self.hidden_size} must be a multiple of "
                f"{named('num_attention_heads')} {self.num_attention_heads}"
            )
        if self.head_dim % 2:
            raise UsageError(f"head size {self.head_dim} must be even for rotary embeddings")
        if self.num_attention_heads % self.kv_heads:
            raise UsageError(
                f"{named('num_attention_heads')} {self.num_attention_heads} must be a multiple of "
                f"{named('num_kv_heads')} {self.kv_heads}"
            )

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
    """A preset with the shape options the user gave."""
    if preset not in PRESETS:
        raise UsageError(f"{named('preset')} '{preset}' is unknown: use one of {', '.join(PRESETS)}")
    return replace(PRESETS[preset], **overrides)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = option(16, "Rows per micro-batch.", at_least=1)
    grad_accum: int = option(
        1, "Micro-batches per optimizer step.", aliases=("accumulation_steps",), at_least=1
    )
    global_batch_size: int | None = option(
        None, "Rows per optimizer step over all processes; sets grad_accum from it.", at_least=1
    )
    max_steps: int | None = option(
        None, "Optimizer steps (default: one epoch).", aliases=("max_iters",), at_least=1
    )
    epochs: float | None = option(
        None, "Passes over the data (with `max_steps`: whichever ends first).", above=0
    )
    learning_rate: float = option(3e-4, "Peak learning rate.", aliases=("lr",), at_least=0)
    lr_schedule: str = option("cosine", "LR after warmup.", choices=LR_SCHEDULES)
    warmup_steps: int | None = option(None, "Linear warmup (default: 5% of the steps).", at_least=0)
    lr_stable_ratio: float = option(0.4, "wsd: share held at the peak.", at_least=0, at_most=1)
    min_lr_ratio: float = option(0.1, "Final LR as a share of the peak.", at_least=0, at_most=1)
    weight_decay: float = option(0.1, "AdamW weight decay.", at_least=0)
    adam_beta2: float = option(0.95, "AdamW beta2 (squared-gradient decay).", at_least=0, below=1)
    grad_clip: float = option(1.0, "Max gradient norm (0: off).", at_least=0)
    ema_decay: float = option(
        0.0,
        "Keep an exponential moving average of the weights, this much of it kept each step (e.g. "
        "0.999; 0: off); validation, sampling, eval and export use it (--no-ema: the raw weights).",
        at_least=0,
        below=1,
    )
    gradient_checkpointing: bool = option(
        False, "Recompute each block's activations in the backward pass: less memory, ~30% more compute."
    )
    fsdp: bool = option(
        False, "With several processes: shard weights, gradients and optimizer state (FSDP2)."
    )
    compile: bool = option(
        False, "torch.compile the transformer blocks (a first step of compiling, then faster steps)."
    )
    dtype: str = option(
        "auto",
        "bf16 or fp16 (CUDA, with loss scaling) autocast, fp32, or auto: bf16 where it is fast (CUDA, "
        "CPUs with AVX512-BF16/AMX), else fp16 on CUDA, else fp32.",
        choices=DTYPES,
    )
    seed: int = option(0, "Seed of weights, data order and masks (default: the global seed).")
    eval_every: int | None = option(None, "Validate every N steps (default: 10 times per run).", at_least=1)
    eval_batches: int = option(4, "Validation batches per evaluation.", at_least=1)
    save_every: int | None = option(
        None, "Checkpoint every N steps (default: at every validation).", at_least=1
    )
    keep_checkpoints: int = option(
        2, "Newest checkpoints kept (0: all); with early stopping, the best one too.", at_least=0
    )
    log_every: int = option(10, "Metrics line every N steps.", aliases=("log_interval",), at_least=1)
    logger: str = option(
        "jsonl",
        "Also send the metrics to tensorboard or wandb (metrics.jsonl is always written).",
        choices=LOGGERS,
    )
    early_stop_patience: int = option(0, "Stop after N evaluations without gain (0: off).", at_least=0)
    early_stop_min_delta: float = option(0.0, "Smallest gain that counts.", at_least=0)

    def __post_init__(self) -> None:
        check_options(self)
        if self.global_batch_size is not None and self.grad_accum != 1:
            raise UsageError(f"{named('global_batch_size')} sets {named('grad_accum')}: give one of them")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DataConfig:
    data: str = option("builtin", "builtin, minimind, or a .jsonl/.txt file.")
    jsonl_field: str = option("text", "Text field of a .jsonl source (a column of a .parquet one).")
    val_fraction: float = option(0.05, "Rows held out for validation.", at_least=0, below=1)

    def __post_init__(self) -> None:
        check_options(self)
        if not self.jsonl_field.strip():
            raise UsageError(f"{named('jsonl_field')} must name a field, e.g. text")

    def check_field_applies(self) -> None:
        """Called when `jsonl_field` was given: it names a field of pretraining text in a .jsonl or
        .parquet file (MiniMind's is one), and has no effect on any other source."""
        if self.data != "minimind" and not self.data.endswith((".jsonl", ".parquet")):
            raise UsageError(
                f"{named('jsonl_field')} names the text field of a .jsonl or .parquet file, and "
                f"{named('data')} {self.data} is not one: drop it"
            )
