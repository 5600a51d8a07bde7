"""`llada compare`: the same prompts through an AR run and a diffusion run, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypedDict

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ..engine.errors import UsageError
from ..engine.options import option_names
from ..engine.run_options import CheckpointFileOptions, TokenizerOptions, WeightsOptions
from ..engine.runs.record import a_kind
from ..engine.sampling.settings import ARSettings, DiffusionSettings, resolved
from .common import cli_errors, complete_run_of, counted, flag, globals_of, out, print_json
from .options import Given, Group, with_configs
from .prompts import gather_prompts
from .sample import WEIGHTS_GROUP, load_given

if TYPE_CHECKING:
    from .. import api


class SideGroups(TypedDict):
    """The option groups of the two sides, as `with_configs` keywords."""

    ar_side: Group
    diffusion_side: Group


# Each side's sampler options, prefixed: --ar-temperature, --diffusion-steps, ...
SIDE_GROUPS: SideGroups = {
    "ar_side": Group(ARSettings, "ar side", prefix="ar_", skip=frozenset({"max_new_tokens"})),
    # Nano-LLaDA's --gen-* flags name the diffusion side's options, unprefixed
    "diffusion_side": Group(DiffusionSettings, "diffusion side", prefix="diffusion_", prefixed_aliases=False),
}


# compare's own flags for the options an error may name: one answer length, and per-side options
# (a name both sides have is shown as the diffusion side's, where the couplings live)
ANSWER_LENGTH = {"gen_length": "--max-new-tokens", "max_new_tokens": "--max-new-tokens"}
COMPARE_FLAGS = {
    **{name: flag(f"ar_{name}") for name in option_names(ARSettings)},
    **{name: flag(f"diffusion_{name}") for name in option_names(DiffusionSettings)},
    **ANSWER_LENGTH,
}


@cli_errors(flags=COMPARE_FLAGS)
@with_configs(
    **SIDE_GROUPS,
    weights=WEIGHTS_GROUP,
    tokenizer=Group(TokenizerOptions, "Checkpoint files"),
    file=Group(CheckpointFileOptions, "Checkpoint files"),
)
def compare(
    ctx: typer.Context,
    ar: Annotated[
        str | None,
        typer.Option(
            "--ar",
            "--minimind-checkpoint",
            help="AR run or checkpoint file.",
            autocompletion=complete_run_of("ar"),
        ),
    ] = None,
    diffusion: Annotated[
        str | None,
        typer.Option(
            "--diffusion",
            "--diffusion-checkpoint",
            help="Diffusion run or checkpoint file.",
            autocompletion=complete_run_of("diffusion"),
        ),
    ] = None,
    prompt: Annotated[list[str] | None, typer.Option("--prompt", "-p", help="Prompt (repeatable).")] = None,
    prompts_file: Annotated[Path | None, typer.Option(help="Text lines or .jsonl with 'prompt'.")] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(
            help="Answer length on both sides (default: what both contexts leave, at most 128).", min=1
        ),
    ] = None,
    chat: Annotated[
        bool, typer.Option("--chat/--no-chat", help="Use the chat template (default on).")
    ] = True,
    system: Annotated[str | None, typer.Option(help="System message.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    *,
    ar_side: Given[ARSettings],
    diffusion_side: Given[DiffusionSettings],
    weights: Given[WeightsOptions],
    tokenizer: Given[TokenizerOptions],
    file: Given[CheckpointFileOptions],
) -> None:
    """Both answers per prompt with wall time, new tokens/s and forward passes, and a summary row.

    With only --ar or only --diffusion, that side alone."""
    g = globals_of(ctx)
    if ar is None and diffusion is None:
        raise UsageError("give --ar RUN, --diffusion RUN or both")
    prompts = gather_prompts(prompt, prompts_file)
    specs = {"ar": ar, "diffusion": diffusion}
    sides = {
        side: load_given(g, spec, tokenizer, file, weights)
        for side, spec in specs.items()
        if spec is not None
    }
    _check_kinds(sides)
    options = {
        "ar": {"max_new_tokens": max_new_tokens, **ar_side.values},
        "diffusion": {"gen_length": max_new_tokens, **diffusion_side.values},
    }
    settings = {
        side: model.fitted(model.settings(**options[side]), prompts, chat, system)
        for side, model in sides.items()
    }
    if max_new_tokens is None and len(sides) == 2:  # one answer length for both: the shorter fit
        length = min(answer_length(s) for s in settings.values())
        options = {
            "ar": {**options["ar"], "max_new_tokens": length},
            "diffusion": {**options["diffusion"], "gen_length": length},
        }
        settings = {
            side: model.fitted(model.settings(**options[side]), prompts, chat, system)
            for side, model in sides.items()
        }
    results = {
        side: model.generate(prompts, chat=chat, system=system, seed=g.seed, settings=settings[side])
        for side, model in sides.items()
    }
    if as_json:
        print_json(
            {
                side: {
                    "run": sides[side].name,
                    "settings": vars(settings[side]),
                    "results": [r.to_dict() for r in results[side]],
                    "summary": _summary(results[side]),
                }
                for side in sides
            }
        )
        return
    for table in _tables(prompts, sides, results):
        out.print(table)
    for side in sides:
        out.print(sampler_caption(side, settings[side]), style="dim", highlight=False, soft_wrap=False)


def answer_length(settings: ARSettings | DiffusionSettings) -> int:
    """The answer length of fitted settings (api.Model.fitted)."""
    if isinstance(settings, ARSettings):
        return resolved(settings.max_new_tokens, "max_new_tokens")
    return resolved(settings.gen_length, "gen_length")


def sampler_caption(side: str, settings: ARSettings | DiffusionSettings) -> str:
    """How one side decoded, in flags: '--threshold 0.9 --block-length 32 ...'."""
    used: dict[str, object]
    if isinstance(settings, ARSettings):
        used = {"temperature": settings.temperature, "top_k": settings.top_k, "top_p": settings.top_p}
    else:
        used = {"method": settings.method, "block_length": settings.block_length, "cache": settings.cache}
        used |= {"threshold": settings.threshold} if settings.threshold else {"steps": settings.steps}
        used |= {"temperature": settings.temperature}
    flags = " ".join(f"--{name.replace('_', '-')} {value}" for name, value in used.items())
    return f"{side}: {counted(answer_length(settings), 'token')}, {flags}"


def _check_kinds(sides: dict[str, api.Model]) -> None:
    for side, model in sides.items():
        if model.kind != side:
            raise UsageError(
                f"--{side} {model.name} is {a_kind(model.kind)} run; give {a_kind(side)} run there"
            )


def _summary(results: list[api.Result]) -> dict[str, float]:
    seconds = max(r.seconds for r in results)  # the batch runs together: wall time is shared
    tokens = sum(r.new_tokens for r in results)
    forwards = sum(r.forward_passes for r in results)
    return {
        "seconds": round(seconds, 3),
        "new_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 2),
        "forward_passes": forwards,
    }


def _tables(
    prompts: list[str], sides: dict[str, api.Model], results: dict[str, list[api.Result]]
) -> tuple[Table, Table]:
    """The answers side by side, then the figures: one labelled column per number, a row per
    prompt and side, and each side's total (the batch's wall time; tokens and forwards summed)."""
    answers = Table(title=" vs ".join(sides).replace("ar", "AR"), show_lines=True)
    # fold, never cut: an answer without spaces (Chinese, Japanese) is one long word to rich
    answers.add_column("prompt", max_width=24, overflow="fold")
    for side, model in sides.items():
        answers.add_column(f"{side}: {model.name}", ratio=1, overflow="fold")
    for i, prompt in enumerate(prompts):
        answers.add_row(Text(prompt), *(_answer(results[side][i]) for side in sides))
    figures = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)  # fits 60 columns unfolded
    for name in ("side", "prompt", "new tokens", "seconds", "tokens/s", "forward passes"):
        figures.add_column(name, justify="left" if name in ("side", "prompt") else "right", overflow="fold")
    for side in sides:
        for i, r in enumerate(results[side]):
            number = f"#{i + 1}" if len(prompts) > 1 else "1"
            figures.add_row(
                side,
                number,
                str(r.new_tokens),
                f"{r.seconds:.2f}",
                f"{r.tokens_per_second:.1f}",
                str(r.forward_passes),
            )
        if len(prompts) > 1:
            s = _summary(results[side])
            figures.add_row(
                side,
                "all",
                str(s["new_tokens"]),
                f"{s['seconds']:.2f}",
                f"{s['tokens_per_second']:.1f}",
                str(s["forward_passes"]),
                style="bold",
            )
    return answers, figures


def _answer(result: api.Result) -> Text:
    """The answer, marked when the length limit stopped it before an end token."""
    text = Text(result.text) if result.text else Text("(empty)", style="dim")
    if not result.finished:
        text.append(f" [cut at {counted(result.new_tokens, 'token')}]", style="dim")
    return text
