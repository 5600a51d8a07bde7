"""`llada sample RUN`: generate from an AR or a diffusion run, for people (rich) and scripts (--json)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from .. import api
from ..engine.errors import UsageError
from ..engine.registry import write_text_atomic
from ..engine.sampling.common import TraceEvent
from .common import (
    cli_errors,
    complete_run_name,
    err,
    globals_of,
    out,
    plain_values,
    print_json,
    print_json_line,
)
from .live import LiveDenoising
from .options import option, with_options
from .prompts import gather_prompts


class Remasking(str, Enum):
    low_confidence = "low_confidence"
    random = "random"


class Cache(str, Enum):
    none = "none"
    prefix = "prefix"
    dual = "dual"


class Mode(str, Enum):
    quality = "quality"
    speed = "speed"


AR, DIFF = "AR sampling", "Diffusion sampling"
SAMPLER_OPTIONS = [
    option(
        "max_new_tokens",
        int | None,
        None,
        "--max-new-tokens",
        help="AR: tokens to generate (diffusion: same as --gen-length).",
        panel=AR,
    ),
    option("temperature", float | None, None, "--temperature", help="0 = greedy / deterministic.", panel=AR),
    option("top_k", int | None, None, "--top-k", help="AR: sample from the k most likely.", panel=AR),
    option("top_p", float | None, None, "--top-p", help="AR: nucleus sampling mass.", panel=AR),
    option(
        "repetition_penalty",
        float | None,
        None,
        "--repetition-penalty",
        help="AR: >1 discourages repeats.",
        panel=AR,
    ),
    option(
        "gen_length",
        int | None,
        None,
        "--gen-length",
        help="Answer slots to denoise (default 128).",
        panel=DIFF,
    ),
    option("steps", int | None, None, "--steps", help="Denoising steps (default: gen length).", panel=DIFF),
    option(
        "block_length", int | None, None, "--block-length", help="Semi-autoregressive block size.", panel=DIFF
    ),
    option(
        "remasking",
        Remasking | None,
        None,
        "--remasking",
        help="Which slots to commit each step.",
        panel=DIFF,
    ),
    option("cfg_scale", float | None, None, "--cfg-scale", help="Classifier-free guidance.", panel=DIFF),
    option("suppress_eos", bool | None, None, "--suppress-eos", help="Never predict EOS.", panel=DIFF),
    option(
        "eos_confidence",
        bool | None,
        None,
        "--eos-confidence/--no-eos-confidence",
        help="Whether EOS may be committed by confidence.",
        panel=DIFF,
    ),
    option(
        "threshold",
        float | None,
        None,
        "--threshold",
        help="Parallel decoding: commit all above this confidence (Fast-dLLM).",
        panel=DIFF,
    ),
    option("cache", Cache | None, None, "--cache", help="Block KV cache: none, prefix or dual.", panel=DIFF),
    option(
        "edit_threshold",
        float | None,
        None,
        "--edit-threshold",
        help="LLaDA 2.1 token editing (with --threshold).",
        panel=DIFF,
    ),
    option(
        "mode",
        Mode | None,
        None,
        "--mode",
        help="LLaDA 2.1 presets: quality (0.7/0.5) or speed (0.5).",
        panel=DIFF,
    ),
]

RunArg = Annotated[
    str, typer.Argument(help="Run name, name@step or run folder.", autocompletion=complete_run_name)
]


@cli_errors
@with_options(SAMPLER_OPTIONS)
def sample(
    ctx: typer.Context,
    run: RunArg,
    prompt: Annotated[
        list[str] | None, typer.Option("--prompt", "-p", help="Prompt (repeatable: a batch).")
    ] = None,
    prompts_file: Annotated[Path | None, typer.Option(help="Text lines or .jsonl with 'prompt'.")] = None,
    chat: Annotated[bool, typer.Option("--chat", help="Wrap the prompt in the chat template.")] = False,
    system: Annotated[str | None, typer.Option(help="System message (with --chat).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    as_jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON line per prompt on stdout.")] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Watch the answer being denoised (terminal only).")
    ] = False,
    trace: Annotated[
        Path | None, typer.Option(help="Write which position was committed at which step.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (default: global --seed).")] = None,
    *,
    opts: dict[str, Any],
) -> None:
    """Generate answers; diffusion runs denoise, AR runs decode left to right."""
    g = globals_of(ctx)
    prompts = gather_prompts(prompt, prompts_file)
    model = api.load(run, device=g.device, home=g.home)
    if model.kind == "ar" and (trace is not None or live):
        raise UsageError("--trace and --live show diffusion denoising; this is an AR run")
    events: list[TraceEvent] | None = [] if trace else None
    view = LiveDenoising(model.tokenizer, enabled=live and err.is_terminal and model.kind == "diffusion")
    with view:
        results = model.generate(
            prompts,
            chat=chat,
            system=system,
            seed=g.seed if seed is None else seed,
            on_step=view.update if view.enabled else None,
            trace=events,
            **plain_values(opts),
        )
    if trace is not None:
        write_trace(trace, events or [], model)
    settings = model.settings(**plain_values(opts))
    if as_json:
        print_json(
            {
                "run": model.name,
                "kind": model.kind,
                "settings": vars(settings),
                "results": [r.to_dict() for r in results],
            }
        )
    elif as_jsonl:
        for result in results:
            print_json_line({"run": model.name, **result.to_dict()})
    else:
        show(results, g.verbosity)


def show(results: list[api.Result], verbosity: int) -> None:
    for result in results:
        if len(results) > 1:
            out.print(Text("> " + result.prompt, style="bold cyan"))
        out.print(result.text, highlight=False, markup=False)
        if verbosity >= 0:
            err.print(
                f"[dim]{result.new_tokens} new tokens, {result.forward_passes} forward passes "
                f"({result.tokens_per_forward:.2f} tokens/forward), {result.seconds:.2f}s, "
                f"{result.tokens_per_second:.1f} tokens/s[/]",
                highlight=False,
            )


def write_trace(path: Path, events: list[TraceEvent], model: api.Model) -> None:
    lines = [
        json.dumps(
            {
                "step": e.step,
                "position": e.position,
                "token_id": e.token_id,
                "token": model.tokenizer.decode([e.token_id], skip_special_tokens=False),
                "kind": e.kind,
                "row": e.row,
            },
            ensure_ascii=False,
        )
        for e in events
    ]
    write_text_atomic(path, "".join(line + "\n" for line in lines))
