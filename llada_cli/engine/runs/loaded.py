"""A run's checkpoint loaded for use: its model, tokenizer and record (sampling, eval, export, SFT)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Kind
from ..errors import LladaError, UsageError, named
from ..model.checkpoint import EMA_FILE, WEIGHTS_FILE, load_weights
from ..model.tokenizer import Tokenizer
from ..model.transformer import Transformer
from ..vocabulary import MASK
from .folder import Run
from .record import RunInfo, a_kind


@dataclass
class LoadedRun:
    run: Run | None  # None: an external checkpoint loaded in memory (imported_runs.external_run)
    step: int
    model: Transformer
    tokenizer: Tokenizer
    info: RunInfo
    tokenizer_file: Path  # the tokenizer.json it was read from (names the token cache)
    ema: bool = False  # the model holds the moving average of the weights (--ema-decay)

    @property
    def kind(self) -> Kind:
        return self.info.kind

    @property
    def label(self) -> str:
        """name@step of a run, or the file name of an external checkpoint."""
        return f"{self.info.name}@{self.step}" if self.run is not None else self.info.name


def load_run(run: Run, step: int | None = None, device: str = "cpu", ema: bool | None = None) -> LoadedRun:
    """`ema`: the moving average of the weights the checkpoint holds (--ema-decay) or, False, the
    weights themselves; None: the average where there is one."""
    info = run.info()
    step = run.resolve_step(step)
    kept = (run.checkpoint_dir(step) / EMA_FILE).is_file()
    if ema is not None and not kept:
        raise UsageError(
            f"{run.name}@{step} holds no moving average of its weights (a run keeps one with "
            f"{named('ema_decay')}): drop {named('ema')}"
        )
    use_ema = kept and ema is not False
    model = load_weights(run.checkpoint_dir(step) / (EMA_FILE if use_ema else WEIGHTS_FILE), device=device)
    tokenizer = Tokenizer.load(run.tokenizer_path)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise LladaError(
            f"run '{run.name}': tokenizer has {tokenizer.vocab_size} tokens but the model only "
            f"{model.config.vocab_size}; the run folder is inconsistent"
        )
    if model.config.causal != (info.kind == "ar"):  # weights copied in from a run of the other kind
        held = "an AR" if model.config.causal else "a diffusion"
        raise LladaError(
            f"run '{run.name}' is {a_kind(info.kind)} run but step {step} holds {held} model's weights; "
            "the run folder is inconsistent"
        )
    if info.kind == "diffusion" and tokenizer.mask_id is None:
        raise LladaError(
            f"run '{run.name}': its tokenizer.json has no {MASK} token, which a diffusion run needs; "
            "the run folder is inconsistent"
        )
    model.eval()
    return LoadedRun(run, step, model, tokenizer, info, run.tokenizer_path, use_ema)
