"""`llada sample RUN`: generate from an AR or a diffusion run, for people (rich) and scripts (--json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

import typer
from rich.text import Text

from ..engine.atomic import write_text_atomic
from ..engine.errors import LladaError, UsageError
from ..engine.options import option_names
from ..engine.run_options import CheckpointFileOptions, TokenizerOptions, WeightsOptions
from ..engine.sampling.settings import ARSettings, DiffusionSettings, SamplingSettings
from .common import (
    Globals,
    cli_errors,
    complete_run_name,
    counted,
    err,
    globals_of,
    out,
    print_json,
    print_json_line,
    was_given,
)
from .live import DEFAULT_FPS, LiveDenoising, check_fps
from .options import Given, Group, with_configs
from .prompts import gather_prompts

if TYPE_CHECKING:
    from .. import api
    from ..engine.sampling.common import TraceEvent

SHARED = option_names(SamplingSettings)


class SamplerGroups(TypedDict):
    """The sampler's option groups, as `with_configs` keywords (sample, chat)."""

    shared: Group
    ar: Group
    diffusion: Group


# which of a run's weights: sample, chat, compare, eval, sweep and export take it
WEIGHTS_GROUP = Group(WeightsOptions, "Checkpoint files")


def load_given(
    g: Globals,
    spec: str,
    tokenizer: Given[TokenizerOptions],
    file: Given[CheckpointFileOptions],
    weights: Given[WeightsOptions],
) -> api.Model:
    """A run or checkpoint file, loaded as the checkpoint-file and weights options say (sample,
    compare, eval)."""
    from .. import api  # loads torch: here, not at the top, so --help stays quick

    return api.load(
        spec,
        device=g.device,
        home=g.home,
        tokenizer=tokenizer.build().path,
        seq_len=file.build().seq_len,
        ema=weights.build().ema,
    )


SAMPLER_GROUPS: SamplerGroups = {
    "shared": Group(SamplingSettings, "Sampling"),
    "ar": Group(ARSettings, "AR sampling", skip=frozenset(SHARED)),
    "diffusion": Group(DiffusionSettings, "Diffusion sampling", skip=frozenset(SHARED)),
}


def sampler_options(*groups: Given) -> dict[str, Any]:
    """The sampler options the user gave, by field name (api.Model.generate's keywords)."""
    return {name: value for given in groups for name, value in given.values.items()}


RunArg = Annotated[
    str | None,
    typer.Argument(
        help="Run name, name@step, run folder or checkpoint file.", autocompletion=complete_run_name
    ),
]
Checkpoint = Annotated[
    str | None,
    typer.Option(
        "--checkpoint",
        help="The same as RUN (Nano-LLaDA's flag): a run or a checkpoint file.",
        autocompletion=complete_run_name,
    ),
]


@cli_errors
@with_configs(
    **SAMPLER_GROUPS,
    weights=WEIGHTS_GROUP,
    tokenizer=Group(TokenizerOptions, "Checkpoint files"),
    file=Group(CheckpointFileOptions, "Checkpoint files"),
)
def sample(
    ctx: typer.Context,
    run: RunArg = None,
    checkpoint: Checkpoint = None,
    prompt: Annotated[
        list[str] | None, typer.Option("--prompt", "-p", help="Prompt (repeatable: a batch).")
    ] = None,
    prompts_file: Annotated[
        Path | None, typer.Option(help="Text lines or .jsonl with 'prompt'; - reads lines from stdin.")
    ] = None,
    infill: Annotated[
        list[str] | None,
        typer.Option(
            help="Diffusion: a text whose [MASK:n] slots (n tokens; [MASK] one) are filled, seen from both "
            "sides (repeatable: a batch); instead of prompts."
        ),
    ] = None,
    chat: Annotated[bool, typer.Option("--chat", help="Wrap the prompt in the chat template.")] = False,
    system: Annotated[str | None, typer.Option(help="System message (with --chat).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    as_jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON line per prompt on stdout.")] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live", help="Watch the answer being written: denoised, or token by token (terminal only)."
        ),
    ] = False,
    live_fps: Annotated[
        float, typer.Option(help="--live: steps shown per second at most (each frame stays 1/FPS s).")
    ] = DEFAULT_FPS,
    trace: Annotated[
        Path | None, typer.Option(help="Write which position was committed at which step.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (default: global --seed).")] = None,
    *,
    shared: Given[SamplingSettings],
    ar: Given[ARSettings],
    diffusion: Given[DiffusionSettings],
    weights: Given[WeightsOptions],
    tokenizer: Given[TokenizerOptions],
    file: Given[CheckpointFileOptions],
) -> None:
    """Generate answers; diffusion runs denoise, AR runs decode left to right."""
    # loads torch: here, not at the top, so that --help and shell completion stay quick

    g = globals_of(ctx)
    source = run if checkpoint is None else checkpoint
    if source is None or (run is None) == (checkpoint is None):
        raise UsageError("give the run to sample: RUN or --checkpoint (one of them)")
    if as_json and as_jsonl:
        raise UsageError("--json and --jsonl: choose one output format")
    if trace is not None and trace.is_dir():
        raise UsageError(f"--trace {trace} is a folder; give a file, e.g. {trace / 'trace.jsonl'}")
    check_fps(live_fps)
    if not live and was_given(ctx, "live_fps"):
        raise UsageError("--live-fps applies only with --live: add that, or drop it")
    options = sampler_options(shared, ar, diffusion)
    if infill:
        check_infill(ctx, prompt, prompts_file)
    prompts = infill or gather_prompts(prompt, prompts_file)
    model = load_given(g, source, tokenizer, file, weights)
    if infill:
        results = model.infill(infill, seed=g.seed if seed is None else seed, **options)
        report(model, results, {"infill": True, **options}, as_json, as_jsonl, g.verbosity)
        return
    if model.kind == "ar" and trace is not None:
        raise UsageError("--trace shows diffusion denoising; this is an AR run")
    events: list[TraceEvent] | None = [] if trace else None
    settings = model.fitted(model.settings(**options), prompts, chat, system)
    view = LiveDenoising(model.tokenizer, enabled=live, fps=live_fps)
    with view:
        results = model.generate(
            prompts,
            chat=chat,
            system=system,
            seed=g.seed if seed is None else seed,
            on_step=view.update if view.enabled else None,
            trace=events,
            settings=settings,
        )
    for warning in model.warnings:
        err.print(f"warning: {warning}", highlight=False)
    if trace is not None:
        write_trace(trace, events or [], model, prompts, settings)
    report(model, results, vars(settings), as_json, as_jsonl, g.verbosity)


def check_infill(ctx: typer.Context, prompt: list[str] | None, prompts_file: Path | None) -> None:
    """--infill gives the texts to fill: no prompt, and nothing of answering after one."""
    if prompt or prompts_file is not None:
        raise UsageError("--infill gives the texts to fill: drop --prompt and --prompts-file")
    for name in ("chat", "system", "live", "live_fps", "trace"):
        if was_given(ctx, name):
            raise UsageError(f"--{name.replace('_', '-')} applies to answers after a prompt, not to --infill")


def report(
    model: api.Model,
    results: list[api.Result],
    settings: dict[str, Any],
    as_json: bool,
    as_jsonl: bool,
    verbosity: int,
) -> None:
    if as_json:
        print_json(
            {
                "run": model.name,
                "kind": model.kind,
                "settings": settings,
                "results": [r.to_dict() for r in results],
            }
        )
    elif as_jsonl:
        for result in results:
            print_json_line({"run": model.name, **result.to_dict()})
    else:
        show(results, verbosity)


def show(results: list[api.Result], verbosity: int) -> None:
    """Each answer; a batch's prompts run together, so its time and rates are given once, for all."""
    batch = len(results) > 1
    for result in results:
        if batch:
            out.print(Text("> " + result.prompt, style="bold cyan"))
        out.print(result.text, highlight=False, markup=False)
        if result.note:
            err.print(f"({result.note})", highlight=False)
        if verbosity >= 0:
            own = (result.new_tokens, result.forward_passes)
            err.print(f"[dim]{counts(*own) if batch else figures(*own, result.seconds)}[/]", highlight=False)
    if batch and verbosity >= 0:
        # each forward pass runs every unfinished prompt: the batch's passes are its longest row's
        passes = max(r.forward_passes for r in results)
        tokens, seconds = sum(r.new_tokens for r in results), max(r.seconds for r in results)
        err.print(
            f"[dim]{counted(len(results), 'prompt')}: {figures(tokens, passes, seconds)}[/]", highlight=False
        )


def counts(new_tokens: int, forward_passes: int) -> str:
    """'6 new tokens, 1 forward pass'."""
    return f"{counted(new_tokens, 'new token')}, {counted(forward_passes, 'forward pass', 'forward passes')}"


def figures(new_tokens: int, forward_passes: int, seconds: float) -> str:
    """'12 new tokens, 6 forward passes (2.00 tokens/forward), 0.02s, 587.6 tokens/s'."""
    return (
        f"{counts(new_tokens, forward_passes)} ({new_tokens / max(1, forward_passes):.2f} tokens/forward), "
        f"{seconds:.2f}s, {new_tokens / max(1e-9, seconds):.1f} tokens/s"
    )


def write_trace(
    path: Path, events: list[TraceEvent], model: api.Model, prompts: list[str], settings: Any
) -> None:
    """JSON lines: a header (run, prompts, sampler settings, EOS ids), then one line per token written."""
    header = {
        "kind": "header",
        "run": model.name,
        "prompts": prompts,
        "settings": vars(settings),
        "eos_ids": sorted({model.tokenizer.eos_id, model.tokenizer.im_end_id}),
    }
    lines = [json.dumps(header, ensure_ascii=False)] + [
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
    try:
        write_text_atomic(path, "".join(line + "\n" for line in lines))
    except OSError as error:  # named by the trace's path, not the temporary file beside it
        raise LladaError(f"cannot write {path}: {error.strerror or error}") from None
