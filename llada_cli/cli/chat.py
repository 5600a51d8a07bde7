"""`llada chat RUN`: a multi-turn conversation in the terminal, or one prompt per stdin line.

The history is ChatML, as the model was fine-tuned on; the oldest turns are dropped when it no
longer leaves room for an answer. AR answers stream token by token; diffusion answers are shown
being denoised in place. With stdin piped, each line is a prompt and each answer one block on
stdout, so scripts can drive it.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..engine.data.lines import stream_lines
from ..engine.errors import LladaError, UsageError, named
from ..engine.sampling.settings import ARSettings, DiffusionSettings, SamplingSettings
from .common import cli_errors, complete_run_name, err, flag, globals_of, out
from .live import LiveDenoising, readable
from .options import Given, with_configs
from .sample import SAMPLER_GROUPS, sampler_options

if TYPE_CHECKING:
    import torch

    from .. import api

COMMANDS = {
    "/reset": "forget the conversation (the system message stays)",
    "/system TEXT": "set the system message and start over",
    "/set OPTION VALUE": "change a sampler option, e.g. /set temperature 0.7",
    "/exit": "leave (or Ctrl-D)",
}


@dataclass
class Conversation:
    system: str | None = None
    turns: list[dict[str, str]] = field(default_factory=list)

    def messages(self, prompt: str) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, *self.turns, {"role": "user", "content": prompt}]


@cli_errors
@with_configs(**SAMPLER_GROUPS)
def chat(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run name or name@step.", autocompletion=complete_run_name)],
    system: Annotated[str | None, typer.Option(help="System message.")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (default: global --seed).")] = None,
    *,
    shared: Given[SamplingSettings],
    ar: Given[ARSettings],
    diffusion: Given[DiffusionSettings],
) -> None:
    """Chat with a fine-tuned run: /reset, /system TEXT, /set OPTION VALUE, /exit."""
    # loads torch: here, not at the top, so that --help and shell completion stay quick
    from .. import api

    g = globals_of(ctx)
    model = api.load(run, device=g.device, home=g.home)
    options = sampler_options(shared, ar, diffusion)
    model.settings(**options)  # refuse a bad option before the first prompt
    interactive = sys.stdin.isatty()
    if interactive:
        err.print(f"chatting with {model.name} ({model.kind}); /help lists the commands", highlight=False)
    conversation = Conversation(system)
    turn_seed = g.seed if seed is None else seed
    for line in _typed() if interactive else _piped():
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            if not _command(line, conversation, model, options):
                return
            continue
        try:
            answer = _answer(model, conversation, line, options, turn_seed, interactive)
        except LladaError as error:  # a bad /set value shows up here: say it and keep chatting
            err.print(f"error: {error.render(flag)}", highlight=False)
            continue
        conversation.turns += [{"role": "user", "content": line}, {"role": "assistant", "content": answer}]
        turn_seed += 1


def _typed() -> Iterator[str]:
    """The lines typed at the prompt, until Ctrl-D."""
    while True:
        try:
            yield err.input("[bold cyan]you>[/] ")
        except EOFError:
            return


def _piped() -> Iterator[str]:
    """Piped stdin, a line at a time as it arrives, read as every data file is (UTF-8, bounded
    lines; engine/data/lines.py): a UTF-16 or binary stdin is refused with its line number."""
    for _, line in stream_lines(sys.stdin.buffer.readline, "stdin"):
        yield line


def _command(line: str, conversation: Conversation, model: api.Model, options: dict[str, Any]) -> bool:
    """Apply a slash command; False to leave the chat."""
    word, _, rest = line.partition(" ")
    if word in ("/exit", "/quit"):
        return False
    if word == "/reset":
        conversation.turns.clear()
        err.print("conversation cleared", highlight=False)
    elif word == "/system":
        conversation.system, conversation.turns = rest.strip() or None, []
        err.print("system message set; conversation cleared", highlight=False)
    elif word == "/set":
        name, _, value = rest.strip().partition(" ")
        try:
            changed = {
                **options,
                name.replace("-", "_"): _parse(model, name.replace("-", "_"), value.strip()),
            }
            model.settings(**changed)
        except LladaError as error:
            err.print(f"error: {error.render(flag)}", highlight=False)
        else:
            options.update(changed)
            err.print(f"{name} = {value.strip()}", highlight=False)
    else:
        err.print("\n".join(f"{c:<18} {h}" for c, h in COMMANDS.items()), highlight=False)
    return True


def _parse(model: api.Model, name: str, text: str) -> Any:
    """A /set value as the sampler field's type (int, float, bool, text, or none for a default)."""
    cls = ARSettings if model.kind == "ar" else DiffusionSettings
    fields = {f.name for f in dataclasses.fields(cls)}
    if name not in fields:
        raise UsageError(f"{named(name)} is not an option of {model.kind} sampling; see llada chat --help")
    kinds = [
        k for k in typing.get_args(typing.get_type_hints(cls)[name]) or [typing.get_type_hints(cls)[name]]
    ]
    if text.lower() in ("none", "auto") and type(None) in kinds:
        return None
    kind = next(k for k in kinds if k is not type(None))
    try:
        if kind is bool:
            return {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False}[
                text.lower()
            ]
        return kind(text)
    except (KeyError, ValueError):
        raise UsageError(f"{named(name)} expects {kind.__name__}, got '{text}'") from None


def _answer(
    model: api.Model, conversation: Conversation, prompt: str, options: dict[str, Any], seed: int, live: bool
) -> str:
    """Generate the next assistant turn, showing it as it forms on a terminal."""
    while True:
        text = model.tokenizer.chat_text(conversation.messages(prompt), add_generation_prompt=True)
        room = model.context_length - len(model.tokenizer.encode(text))
        if room >= 16 or not conversation.turns:
            break
        conversation.turns = conversation.turns[2:]  # drop the oldest exchange to make room
        err.print("(the oldest turn was dropped to fit the context)", highlight=False)
    view = _view(model, live)
    with view:
        result = model.generate(text, seed=seed, on_step=view.update if view.enabled else None, **options)[0]
    if getattr(view, "streamed", False):
        out.print()
    else:
        out.print(result.text, highlight=False, markup=False)
    if result.note:
        err.print(f"({result.note})", highlight=False)
    return result.text


def _view(model: api.Model, live: bool) -> Any:
    if model.kind == "diffusion":
        return LiveDenoising(model.tokenizer, enabled=live and err.is_terminal)
    return TokenStream(model, enabled=live and out.is_terminal)


class TokenStream:
    """AR tokens printed as they are decoded (whole characters only), for the first row."""

    def __init__(self, model: api.Model, enabled: bool) -> None:
        self.model, self.enabled, self.shown, self.streamed = model, enabled, "", False

    def __enter__(self) -> TokenStream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, step: int, tokens: torch.Tensor) -> None:
        text = readable(self.model.tokenizer, tokens[0].tolist())
        if text.startswith(self.shown) and len(text) > len(self.shown):
            out.print(text[len(self.shown) :], end="", highlight=False, markup=False)
            self.shown, self.streamed = text, True
