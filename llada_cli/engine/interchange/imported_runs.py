"""External checkpoints as runs: imported into the registry (`llada runs import`), or loaded in
memory to sample or fine-tune in place (a checkpoint file given where a run is expected)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..config import Kind
from ..errors import LladaError, UsageError, named
from ..model.checkpoint import WEIGHTS_FILE, save_weights
from ..model.tokenizer import Tokenizer
from ..model.transformer import grow_vocab
from ..runs.folder import Run
from ..runs.loaded import LoadedRun
from ..runs.record import RunInfo
from ..runs.registry import Registry
from .files import EXTERNAL_SUFFIXES, read_checkpoint
from .hf_format import is_hf_folder, load_hf_folder
from .importing import DIFFUSION_LAYOUTS, ImportReport, detect_layout, load_external_model


def external_kind(path: Path) -> Kind:
    """The kind of an external checkpoint: Nano-LLaDA's layout is a diffusion model, MiniMind's AR."""
    state, _ = read_checkpoint(Path(path))
    return "diffusion" if detect_layout(state).name in DIFFUSION_LAYOUTS else "ar"


def is_checkpoint_file(spec: str) -> bool:
    path = Path(spec).expanduser()
    return path.suffix in EXTERNAL_SUFFIXES and path.is_file()


# A model may have more token rows than its tokenizer has ids (padded to a round size), not this many.
PADDED_ROWS = 128


def external_run(
    path: Path,
    tokenizer_path: Path | None,
    kind: Kind | None = None,
    seq_len: int | None = None,
    num_attention_heads: int | None = None,
) -> LoadedRun:
    """An external checkpoint loaded in memory as a run, to sample or fine-tune without importing it.

    Without `kind`, the layout tells: Nano-LLaDA checkpoints are diffusion models, MiniMind's AR.
    """
    return _external_run(path, tokenizer_path, kind, seq_len, num_attention_heads)[0]


def _external_run(
    path: Path,
    tokenizer_path: Path | None,
    kind: Kind | None,
    seq_len: int | None,
    num_attention_heads: int | None,
) -> tuple[LoadedRun, ImportReport]:
    if is_hf_folder(Path(path)):  # a transformers folder (llada export): config.json says it all
        model, kind = load_hf_folder(Path(path), kind)
        tokenizer_path = tokenizer_path or Path(path) / "tokenizer.json"
        report = ImportReport("transformers", sorted(model.state_dict()), [], [])
    else:
        if tokenizer_path is None:
            raise UsageError(
                f"{path}: an external checkpoint needs {named('tokenizer')} or {named('tokenizer_dir')}"
            )
        causal = None if kind is None else kind == "ar"  # None: the layout says (one read of the file)
        model, report = load_external_model(path, causal, num_attention_heads, seq_len)
    kind = "ar" if model.config.causal else "diffusion"
    tokenizer = Tokenizer.load(tokenizer_path)
    if kind == "diffusion":
        tokenizer = tokenizer.with_mask_token()
    if tokenizer.vocab_size > model.config.vocab_size:
        model = grow_vocab(model, tokenizer.vocab_size).eval()
    if model.config.vocab_size - tokenizer.vocab_size >= PADDED_ROWS:
        raise LladaError(
            f"{path} has {model.config.vocab_size} token rows but the tokenizer {tokenizer.vocab_size} ids: "
            "give the tokenizer the model was trained with"
        )
    if not all(bool(torch.isfinite(weight).all()) for weight in model.state_dict().values()):
        raise LladaError(f"{path} holds NaN or infinite weights: it cannot be sampled or trained")
    info = RunInfo(
        name=Path(path).name,
        kind=kind,
        stage="imported",
        model=model.config,
        parameters=model.num_parameters,
        status="completed",
        source=str(Path(path).resolve()),
        import_report=report.to_dict(),
    )
    return LoadedRun(None, 0, model, tokenizer, info, Path(tokenizer_path)), report


def register_import(
    registry: Registry,
    path: Path,
    name: str,
    tokenizer_path: Path | None,
    kind: Kind | None,
    overwrite: bool = False,
    num_attention_heads: int | None = None,
    command: list[str] | None = None,
) -> tuple[Run, ImportReport]:
    """A completed run at step 0 holding the external model: ready to sample, fine-tune or continue."""
    registry.check_free(name, overwrite)  # before a long read
    loaded, report = _external_run(path, tokenizer_path, kind, None, num_attention_heads)
    with registry.writing_new(name, overwrite) as run:  # only now: a failed import leaves no folder
        loaded.tokenizer.save(run.tokenizer_path)
        run.write_info(replace(loaded.info, name=name, command=command or []))
        run.commit_checkpoint(
            0,
            lambda folder: save_weights(
                loaded.model.config, loaded.model.state_dict(), folder / WEIGHTS_FILE
            ),
        )
    return run, report
