"""`llada chat RUN`: a multi-turn conversation in the terminal, or one prompt per stdin line.

The history is ChatML, as the model was fine-tuned on; the oldest turns are dropped when it no
longer leaves room for an answer. AR answers stream token by token; diffusion answers are shown
being denoised in place; Ctrl-C stops one. With stdin piped, each line is a prompt and each answer
one block on stdout, so scripts can drive it; a line that failed makes the exit code 1.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..engine.data.lines import stream_lines
from ..engine.errors import LladaError, UsageError
from ..engine.run_options import WeightsOptions
from ..engine.sampling.settings import ARSettings, DiffusionSettings, SamplingSettings
from .chat_settings import ChatSettings, shown
from .common import cli_errors, complete_run_name, err, globals_of, out
from .live import LiveDenoising, readable
from .options import Given, with_configs
from .sample import SAMPLER_GROUPS, WEIGHTS_GROUP, sampler_options

if TYPE_CHECKING:
    import torch

    from .. import api

COMMANDS = {
    "/reset": "forget the conversation (the system message stays)",
    "/system TEXT": "set the system message and start over",
    "/set NAME VALUE": "change a sampler setting, e.g. /set temperature 0.7",
    "/set SWITCH": "turn a switch on (/set suppress-eos); no-SWITCH off where its flag has --no-",
    "/unset NAME": "the setting's default again (or /set NAME default)",
    "/set": "list the settings and their values",
    "/help": "this list",
    "/exit": "leave (or Ctrl-D)",
}
PROMPT = "you> "


@dataclass
class Conversation:
    system: str | None = None
    turns: list[dict[str, str]] = field(default_factory=list)
    dropped: bool = False  # whether old turns were dropped yet (said once)

    def messages(self, prompt: str) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, *self.turns, {"role": "user", "content": prompt}]


@cli_errors
@with_configs(**SAMPLER_GROUPS, weights=WEIGHTS_GROUP)
def chat(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run name or name@step.", autocompletion=complete_run_name)],
    system: Annotated[str | None, typer.Option(help="System message.")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (default: global --seed).")] = None,
    *,
    shared: Given[SamplingSettings],
    ar: Given[ARSettings],
    diffusion: Given[DiffusionSettings],
    weights: Given[WeightsOptions],
) -> None:
    """Chat with a fine-tuned run: /reset, /system TEXT, /set NAME VALUE, /unset NAME, /help, /exit."""
    # loads torch: here, not at the top, so that --help and shell completion stay quick
    from .. import api

    g = globals_of(ctx)
    model = api.load(run, device=g.device, home=g.home, ema=weights.build().ema)
    settings = ChatSettings(model, sampler_options(shared, ar, diffusion))
    settings.check(system)  # refuse a bad option, or a length no turn fits, before the first prompt
    if model.loaded.info.stage == "pretrain":  # an imported run or a file may be either: said nothing
        err.print(
            f"note: {model.name} is a base run, not fine-tuned for chat: its answers need not follow "
            "the conversation (llada sft makes a chat run)",
            highlight=False,
        )
    interactive = sys.stdin.isatty()
    if interactive:
        err.print(f"chatting with {model.name} ({model.kind}); /help lists the commands", highlight=False)
    session = Session(model, settings, Conversation(system), g.seed if seed is None else seed, interactive)
    failed = False
    for line in _typed() if interactive else _piped():
        line = line.strip()
        if not line:
            continue
        try:
            if not line.startswith("/"):
                session.turn(line)
            elif not session.command(line):
                break
        except LladaError as error:  # say it and keep chatting
            err.print(f"error: {error.render(shown)}", highlight=False)
            failed = True
        except KeyboardInterrupt:  # Ctrl-C stops the answer, not the chat
            if not interactive:
                raise
            err.print("(stopped)", highlight=False)
    if failed and not interactive:  # a script learns that a line went wrong, after the others were answered
        raise typer.Exit(1)


def _typed() -> Iterator[str]:
    """The lines typed at the prompt, until Ctrl-D or a second Ctrl-C in a row there."""
    read = _reader()
    pressed = False
    while True:
        try:
            line = read()
        except EOFError:
            err.print()  # the shell's prompt starts on a line of its own
            return
        except KeyboardInterrupt:
            err.print()
            if pressed:
                return
            err.print("(Ctrl-C again, Ctrl-D or /exit leaves)", highlight=False)
            pressed = True
            continue
        pressed = False
        yield line


def _reader() -> Callable[[], str]:
    """input() with line editing and history on the arrow keys where Python has readline (not on
    Windows): importing it is what turns them on. readline draws the prompt itself then, so that
    it knows the prompt's width when it redraws the line."""
    plain = functools.partial(err.input, f"[bold cyan]{PROMPT.strip()}[/] ")
    try:
        importlib.import_module("readline")
    except ImportError:
        return plain
    if not sys.stdout.isatty():  # input() would write its prompt into the redirected answers
        return plain
    colour = err.color_system is not None and not err.no_color
    prompt = f"\001\033[1;36m\002{PROMPT.strip()}\001\033[0m\002 " if colour else PROMPT
    return functools.partial(input, prompt)


def _piped() -> Iterator[str]:
    """Piped stdin, a line at a time as it arrives, read as every data file is (UTF-8, bounded
    lines; engine/data/lines.py): a UTF-16 or binary stdin is refused with its line number."""
    for _, line in stream_lines(sys.stdin.buffer.readline, "stdin"):
        yield line


@dataclass
class Session:
    model: api.Model
    settings: ChatSettings
    conversation: Conversation
    seed: int  # the next turn's; each turn takes the next one
    live: bool  # show answers forming (on a terminal)

    def command(self, line: str) -> bool:
        """Apply a slash command; False to leave the chat."""
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        system = self.conversation.system
        if word in ("/exit", "/quit"):
            return False
        if word == "/reset":
            self.conversation.turns.clear()
            err.print("conversation cleared", highlight=False)
        elif word == "/system":
            self.settings.check(rest or None)  # a new system message must leave the answer length room
            self.conversation = Conversation(rest or None)
            err.print("system message set; conversation cleared", highlight=False)
        elif word == "/set":
            err.print(self.settings.set(rest, system) if rest else self.settings.listing(), highlight=False)
        elif word == "/unset":
            err.print(self.settings.unset(rest, system), highlight=False)
        elif word in ("/help", "/?"):
            err.print("\n".join(f"{c:<16} {h}" for c, h in COMMANDS.items()), highlight=False)
        else:
            words = sorted({command.split()[0] for command in COMMANDS})
            raise UsageError(f"unknown command {word}; the commands are {', '.join(words)} (/help says more)")
        return True

    def turn(self, prompt: str) -> None:
        """Answer `prompt` and add the exchange to the conversation."""
        answer = self._answer(prompt)
        self.conversation.turns += [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": answer},
        ]
        self.seed += 1

    def _answer(self, prompt: str) -> str:
        """Generate the next assistant turn, showing it as it forms on a terminal."""
        model, conversation = self.model, self.conversation
        while True:
            text = model.tokenizer.chat_text(conversation.messages(prompt), add_generation_prompt=True)
            room = model.context_length - len(model.tokenizer.encode(text))
            if room >= self.settings.needed() or not conversation.turns:
                break
            conversation.turns = conversation.turns[2:]  # the oldest exchange makes room
            if not conversation.dropped:
                err.print(
                    f"(the conversation has outgrown the model's context of {model.context_length} tokens: "
                    "the oldest turns are dropped from now on)",
                    highlight=False,
                )
                conversation.dropped = True
        view = _view(model, self.live)
        try:
            with view:
                on_step = view.update if view.enabled else None
                result = model.generate(text, seed=self.seed, on_step=on_step, **self.settings.given)[0]
        except KeyboardInterrupt:
            if getattr(view, "streamed", False):
                out.print()  # end the line of the half-shown answer
            raise
        if getattr(view, "streamed", False):
            out.print()
        else:
            out.print(result.text, highlight=False, markup=False)
        if result.note:
            err.print(f"({result.note})", highlight=False)
        return result.text


def _view(model: api.Model, live: bool) -> Any:
    if model.kind == "diffusion":
        # drawn as it comes: a conversation does not wait for frames (sample --live does)
        return LiveDenoising(model.tokenizer, enabled=live and err.is_terminal, fps=None)
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
