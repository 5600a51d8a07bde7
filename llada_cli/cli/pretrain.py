"""`llada pretrain ar` and `llada pretrain diffusion`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer

from .common import cli_errors
from .options import (
    DOC_MASK_OPTION,
    MODEL_OPTIONS,
    RUN_OPTIONS,
    TRAIN_OPTIONS,
    option,
    parent_option,
    with_options,
)
from .training import build_request, train

app = typer.Typer(
    help="Pretrain an AR model, or a diffusion model (optionally from an AR run).", no_args_is_help=True
)

DataOption = Annotated[
    str,
    typer.Option("--data", help="builtin, minimind, or a .jsonl/.txt file.", rich_help_panel="Run and data"),
]


class MaskSchedule(str, Enum):
    iid_t = "iid_t"
    wsd = "wsd"


class NoiseSchedule(str, Enum):
    linear = "linear"
    cosine = "cosine"


DIFFUSION = "Diffusion objective"
DIFFUSION_OPTIONS = [
    parent_option(
        "init_from",
        ("--init-from",),
        "AR run (name, name@step or path) to continue as diffusion.",
        required=False,
    ),
    option(
        "mask_schedule",
        MaskSchedule | None,
        None,
        "--mask-schedule",
        help="iid_t (LLaDA 1.0) or wsd (LLaDA 2.0 block curriculum).",
        panel=DIFFUSION,
    ),
    option(
        "noise_schedule",
        NoiseSchedule | None,
        None,
        "--noise-schedule",
        help="linear or cosine alpha(t).",
        panel=DIFFUSION,
    ),
    option(
        "time_weighted_loss",
        bool | None,
        None,
        "--time-weighted-loss",
        help="Weight by w(t) of the noise schedule.",
        panel=DIFFUSION,
    ),
    option(
        "normalised_loss",
        bool | None,
        None,
        "--normalized-loss",
        help="sum(w*CE)/sum(w*masked) (nano-llada) instead of the ELBO's division by the token count.",
        panel=DIFFUSION,
    ),
    option(
        "eps",
        float | None,
        None,
        "--iid-mask-eps",
        help="Smallest mask rate (default 1e-3).",
        panel=DIFFUSION,
    ),
    option(
        "variable_length_prob",
        float | None,
        None,
        "--variable-length-prob",
        help="Share of batches cut to a random length (default 0.01).",
        panel=DIFFUSION,
    ),
    option(
        "block_sizes_up",
        str | None,
        None,
        "--block-sizes-up",
        help="wsd warmup block sizes, e.g. 1,4,16,64,256.",
        panel=DIFFUSION,
    ),
    option(
        "block_sizes_down",
        str | None,
        None,
        "--block-sizes-down",
        help="wsd decay block sizes.",
        panel=DIFFUSION,
    ),
    option(
        "wsd_warmup_ratio",
        float | None,
        None,
        "--wsd-warmup-ratio",
        help="wsd warmup share (0.3).",
        panel=DIFFUSION,
    ),
    option(
        "wsd_stable_ratio",
        float | None,
        None,
        "--wsd-stable-ratio",
        help="wsd stable share (0.5).",
        panel=DIFFUSION,
    ),
]


@app.command("ar")
@cli_errors
@with_options(RUN_OPTIONS, MODEL_OPTIONS, TRAIN_OPTIONS, [DOC_MASK_OPTION])
def pretrain_ar(ctx: typer.Context, data: DataOption = "builtin", *, opts: dict[str, Any]) -> None:
    """Pretrain an autoregressive (causal) model: next-token cross entropy."""
    objective = {"doc_attention_mask": opts["doc_attention_mask"]}
    train(ctx, build_request(ctx, "ar", "pretrain", opts, data, None, objective))


@app.command("diffusion")
@cli_errors
@with_options(RUN_OPTIONS, DIFFUSION_OPTIONS, MODEL_OPTIONS, TRAIN_OPTIONS, [DOC_MASK_OPTION])
def pretrain_diffusion(ctx: typer.Context, data: DataOption = "builtin", *, opts: dict[str, Any]) -> None:
    """Pretrain a masked diffusion model; --init-from continues an AR run (attention turns bidirectional)."""
    objective = {
        name: opts[name]
        for name in (
            "mask_schedule",
            "noise_schedule",
            "time_weighted_loss",
            "normalised_loss",
            "eps",
            "variable_length_prob",
            "wsd_warmup_ratio",
            "wsd_stable_ratio",
            "doc_attention_mask",
        )
    }
    for name in ("block_sizes_up", "block_sizes_down"):
        objective[name] = _int_list(opts[name], "--" + name.replace("_", "-"))
    train(ctx, build_request(ctx, "diffusion", "pretrain", opts, data, opts["init_from"], objective))


def _int_list(text: str | None, flag: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated integers, got '{text}'", param_hint=flag
        ) from None
