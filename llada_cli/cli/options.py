"""Option groups shared by the training commands, declared once.

`@with_options(GROUP, ...)` appends a group's parameters to a command's signature (Typer reads
the signature) and hands their values to the command as one dict, `opts`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import complete_run_name


class Preset(str, Enum):
    tiny = "tiny"
    small = "small"
    minimind2 = "minimind2"


class DType(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class LRSchedule(str, Enum):
    cosine = "cosine"
    wsd = "wsd"
    constant = "constant"


def option(
    name: str, kind: Any, default: Any, *flags: str, help: str, panel: str, **extra: Any
) -> inspect.Parameter:
    declared = typer.Option(*flags, help=help, rich_help_panel=panel, **extra)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, declared]
    )


MODEL = "Model shape"
MODEL_OPTIONS = [
    option(
        "preset",
        Preset,
        Preset.small,
        "--preset",
        help="Size preset; the flags below override it.",
        panel=MODEL,
    ),
    option("hidden_size", int | None, None, "--hidden-size", help="Hidden width.", panel=MODEL),
    option(
        "num_hidden_layers", int | None, None, "--num-hidden-layers", help="Transformer blocks.", panel=MODEL
    ),
    option(
        "num_attention_heads", int | None, None, "--num-attention-heads", help="Query heads.", panel=MODEL
    ),
    option("num_kv_heads", int | None, None, "--num-kv-heads", help="Key/value heads (GQA).", panel=MODEL),
    option(
        "seq_len", int | None, None, "--seq-len", "--max-seq-len", help="Training row length.", panel=MODEL
    ),
    option("rope_theta", float | None, None, "--rope-theta", help="RoPE base.", panel=MODEL),
    option(
        "inference_rope_scaling",
        bool,
        False,
        "--inference-rope-scaling",
        help="MiniMind's YaRN RoPE scaling (factor 16), in training and sampling: generate past --seq-len.",
        panel=MODEL,
    ),
    option(
        "tie_embeddings",
        bool | None,
        None,
        "--tie-embeddings/--no-tie-embeddings",
        help="Share the embedding and the output head.",
        panel=MODEL,
    ),
    option(
        "qk_norm",
        bool | None,
        None,
        "--qk-norm/--no-qk-norm",
        help="RMSNorm on queries and keys.",
        panel=MODEL,
    ),
    option(
        "vocab_size",
        int,
        6400,
        "--vocab-size",
        help="BPE vocabulary to train (without --tokenizer).",
        panel=MODEL,
    ),
    option(
        "tokenizer",
        Path | None,
        None,
        "--tokenizer",
        "--tokenizer-json",
        help="Use this tokenizer.json instead of training one.",
        panel=MODEL,
    ),
]

TRAIN = "Training"
TRAIN_OPTIONS = [
    option("batch_size", int, 16, "--batch-size", help="Rows per micro-batch.", panel=TRAIN),
    option("grad_accum", int, 1, "--grad-accum", help="Micro-batches per optimizer step.", panel=TRAIN),
    option("max_steps", int | None, None, "--max-steps", "--max-iters", help="Optimizer steps.", panel=TRAIN),
    option(
        "epochs",
        float | None,
        None,
        "--epochs",
        help="Passes over the data (instead of --max-steps).",
        panel=TRAIN,
    ),
    option("learning_rate", float, 3e-4, "--learning-rate", "--lr", help="Peak learning rate.", panel=TRAIN),
    option(
        "lr_schedule", LRSchedule, LRSchedule.cosine, "--lr-schedule", help="LR after warmup.", panel=TRAIN
    ),
    option(
        "warmup_steps", int | None, None, "--warmup-steps", help="Linear warmup (default 5%).", panel=TRAIN
    ),
    option(
        "lr_stable_ratio", float, 0.4, "--lr-stable-ratio", help="wsd: share held at the peak.", panel=TRAIN
    ),
    option(
        "min_lr_ratio", float, 0.1, "--min-lr-ratio", help="Final LR as a share of the peak.", panel=TRAIN
    ),
    option("weight_decay", float, 0.1, "--weight-decay", help="AdamW weight decay.", panel=TRAIN),
    option("grad_clip", float, 1.0, "--grad-clip", help="Max gradient norm (0: off).", panel=TRAIN),
    option(
        "dtype",
        DType,
        DType.auto,
        "--dtype",
        help="bf16 autocast, fp32, or auto: bf16 where it is fast (CUDA, CPUs with AVX512-BF16/AMX).",
        panel=TRAIN,
    ),
    option("seed", int | None, None, "--seed", help="Seed (default: the global --seed).", panel=TRAIN),
    option("device", str | None, None, "--device", help="auto|cpu|cuda|mps (default: global).", panel=TRAIN),
    option(
        "eval_every",
        int | None,
        None,
        "--eval-every",
        help="Validate every N steps (default 10x/run).",
        panel=TRAIN,
    ),
    option("eval_batches", int, 4, "--eval-batches", help="Validation batches per evaluation.", panel=TRAIN),
    option(
        "save_every",
        int | None,
        None,
        "--save-every",
        help="Checkpoint every N steps (default: at eval).",
        panel=TRAIN,
    ),
    option(
        "keep_checkpoints",
        int,
        2,
        "--keep-checkpoints",
        help="Newest checkpoints kept (0: all); with early stopping, the best one too.",
        panel=TRAIN,
    ),
    option("log_every", int, 10, "--log-every", help="Metrics line every N steps.", panel=TRAIN),
    option(
        "early_stop_patience",
        int,
        0,
        "--early-stop-patience",
        help="Stop after N evaluations without gain (0: off).",
        panel=TRAIN,
    ),
    option(
        "early_stop_min_delta",
        float,
        0.0,
        "--early-stop-min-delta",
        help="Smallest gain that counts.",
        panel=TRAIN,
    ),
]

RUN = "Run and data"
RUN_OPTIONS = [
    option("run_name", str, ..., "--run-name", "-n", help="Name of the new run.", panel=RUN),
    option("resume", bool, False, "--resume", help="Continue this run from its last checkpoint.", panel=RUN),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing run of this name.", panel=RUN),
    option("jsonl_field", str, "text", "--jsonl-field", help="Text field of a .jsonl source.", panel=RUN),
    option("val_fraction", float, 0.05, "--val-fraction", help="Rows held out for validation.", panel=RUN),
]

DOC_MASK_OPTION = option(
    "doc_attention_mask",
    bool | None,
    None,
    "--doc-attention-mask",
    help="Attend only within a document of a packed row.",
    panel=TRAIN,
)


def parent_option(name: str, flags: tuple[str, ...], help: str, required: bool) -> inspect.Parameter:
    default = ... if required else None
    kind = str if required else str | None
    return option(name, kind, default, *flags, help=help, panel=RUN, autocompletion=complete_run_name)


def with_options(*groups: list[inspect.Parameter]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        extra = [p for group in groups for p in group]
        names = {p.name for p in extra}

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            opts = {name: kwargs.pop(name) for name in names}
            return func(*args, opts=opts, **kwargs)

        own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "opts"]
        wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
        return wrapper

    return decorate
