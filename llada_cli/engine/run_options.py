"""The options of the run a command makes or loads: its name and device (RunOptions), how a fresh
model starts (StartOptions), where its tokenizer comes from (TokenizerOptions), and what a
checkpoint file may not say (CheckpointFileOptions).

Declared apart from the stages and the importers that use them (training/stages.py,
interchange/imported_runs.py), so that the CLI builds its commands from them without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import PRESETS
from .errors import UsageError, named
from .options import REQUIRED, check_options, option
from .vocabulary import MIN_VOCAB_SIZE


@dataclass(frozen=True)
class RunOptions:
    run_name: str = option(REQUIRED, "Name of the new run.", aliases=("n",))
    resume: bool = option(False, "Continue this run from its last checkpoint.")
    overwrite: bool = option(False, "Replace an existing run of this name.")
    device: str | None = option(None, "auto, cpu, cuda, cuda:N or mps (default: the global device).")
    devices: int = option(1, "Processes to train in, data parallel (one per GPU; gloo on CPU).", at_least=1)

    def __post_init__(self) -> None:
        check_options(self)
        if self.resume and self.overwrite:
            raise UsageError(f"{named('resume')} and {named('overwrite')} are incompatible: pick one")


# How a fresh model is made: a run continued from a parent takes the parent's shape and tokenizer.
FRESH_START = ("preset", "vocab_size", "tokenizer_sample_mb")
# Options of pretraining text only: SFT reads conversations.
TEXT_ONLY = ("jsonl_field",)


@dataclass(frozen=True)
class StartOptions:
    """How a fresh model is made (a continued run takes its parent's shape and tokenizer)."""

    preset: str = option("small", "Size preset; the shape options override it.", choices=PRESETS)
    vocab_size: int = option(
        6400,
        "BPE vocabulary to train (without `tokenizer`).",
        aliases=("target_vocab_size",),
        at_least=MIN_VOCAB_SIZE,
    )
    tokenizer_sample_mb: float = option(
        64.0, "Megabytes of the corpus, spread over all of it, that a new tokenizer trains on.", above=0
    )
    max_position_embeddings: int | None = option(
        None, "The model's context, when longer than its training rows (default: the row length).", at_least=2
    )
    inference_rope_scaling: bool = option(
        False, "MiniMind's YaRN RoPE scaling (factor 16), in training and sampling: generate past `seq_len`."
    )

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True)
class CheckpointFileOptions:
    """What a checkpoint file may not say about itself."""

    seq_len: int | None = option(
        None, "A checkpoint file's context length (default: what the file says, else 512).", at_least=2
    )

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True)
class WeightsOptions:
    """Which of a run's weights a command uses."""

    ema: bool | None = option(
        None,
        "The run's moving average of the weights (kept with --ema-decay) or, --no-ema, the weights "
        "themselves (default: the average where there is one).",
        negatable=True,
    )

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True)
class TokenizerOptions:
    """Where a tokenizer.json comes from when the command is not handed one by a run."""

    tokenizer: Path | None = option(
        None, "Use this tokenizer.json (instead of training one).", aliases=("tokenizer_json",)
    )
    tokenizer_dir: Path | None = option(None, "Use DIR/tokenizer.json (Nano-LLaDA's flag).")

    def __post_init__(self) -> None:
        check_options(self)
        if self.tokenizer is not None and self.tokenizer_dir is not None:
            raise UsageError(
                f"{named('tokenizer')} and {named('tokenizer_dir')} name two tokenizers: give one"
            )

    @property
    def path(self) -> Path | None:
        if self.tokenizer_dir is not None:
            return Path(self.tokenizer_dir) / "tokenizer.json"
        return self.tokenizer
