"""`llada sft`: supervised fine-tuning of an AR or a diffusion run on conversations."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer

from .common import cli_errors
from .options import MODEL_OPTIONS, RUN_OPTIONS, TRAIN_OPTIONS, option, parent_option, with_options
from .training import build_request, train


class PadPolicy(str, Enum):
    eos = "eos"
    ignore = "ignore"


SFT = "SFT (diffusion runs)"
SFT_OPTIONS = [
    parent_option(
        "base",
        ("--base", "--load-from"),
        "Run to fine-tune (AR or diffusion, name/name@step/path).",
        required=True,
    ),
    option(
        "pad_policy",
        PadPolicy | None,
        None,
        "--pad-policy",
        help="eos: EOS padding is trained as response (learn to stop); ignore: not trained.",
        panel=SFT,
    ),
    option(
        "complementary_masking",
        bool | None,
        None,
        "--complementary-masking",
        help="Each row twice with complementary masks (LLaDA 2.0).",
        panel=SFT,
    ),
    option(
        "mask_ratio_band",
        str | None,
        None,
        "--mask-ratio-band",
        help="Restrict t to [a,b], e.g. 0.2,0.8.",
        panel=SFT,
    ),
]

DataOption = Annotated[
    str,
    typer.Option(
        "--data", help="builtin, minimind, or a conversations .jsonl.", rich_help_panel="Run and data"
    ),
]


@cli_errors
@with_options(RUN_OPTIONS, SFT_OPTIONS, MODEL_OPTIONS, TRAIN_OPTIONS)
def sft(ctx: typer.Context, data: DataOption = "builtin", *, opts: dict[str, Any]) -> None:
    """Fine-tune on conversations (ChatML). AR: loss on answers only; diffusion: prompts never masked."""
    objective = {name: opts[name] for name in ("pad_policy", "complementary_masking")}
    objective["mask_ratio_band"] = _band(opts["mask_ratio_band"])
    train(ctx, build_request(ctx, "sft", "sft", opts, data, opts["base"], objective))


def _band(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"expected two numbers like 0.2,0.8, got '{text}'", param_hint="--mask-ratio-band"
        ) from None
    if not 0.0 <= low < high <= 1.0:
        raise typer.BadParameter("needs 0 <= a < b <= 1", param_hint="--mask-ratio-band")
    return low, high
