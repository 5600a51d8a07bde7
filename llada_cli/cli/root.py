"""The command line's behaviour: help that reads at 80 columns, global options anywhere on the
line, and one-line usage errors.

`llada sample RUN --home X` means `llada --home X sample RUN`: a global option given after the
subcommand moves in front of it, unless that command has an option of the same name (`sample
--seed` is the sampling seed). Usage errors (a missing argument, an unknown option, a bad value)
print one `error:` line, as runtime errors do, instead of click's usage box.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

from .common import tolerant_streams
from .options import machine_integers
from .usage_examples import EXAMPLES

if TYPE_CHECKING:  # the command classes PlainHelp is mixed into (click commands)
    _Command = TyperCommand
else:
    _Command = object


class PlainHelp(_Command):
    """Help as plain text grouped by panel: every flag and its aliases in full on their line, the
    help wrapped beneath when they are long, every default shown, and brackets left as written.
    (The rich help table cut flag names at 80 columns and read `[a,b]` as markup.)

    Every integer parameter takes only what a 64-bit integer holds (cli/options.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        machine_integers(self.params)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = _help_record(param, ctx)
            if record is not None:
                default = "Arguments" if param.param_type_name == "argument" else "Options"
                sections.setdefault(getattr(param, "rich_help_panel", None) or default, []).append(record)
        for name in sorted(sections, key=lambda n: _panel_order(n, sections[n])):
            with formatter.section(name):
                formatter.write_dl(sections[name], col_max=34)
        if hasattr(self, "format_commands"):
            self.format_commands(ctx, formatter)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        super().format_epilog(ctx, formatter)
        path: list[str] = []
        while ctx.parent is not None:  # the command's path under `llada`, whatever the root is called
            path.insert(0, ctx.info_name)
            ctx = ctx.parent
        lines = EXAMPLES.get(" ".join(path), ())
        if not lines:
            return
        with formatter.section("Examples"):
            for line in lines:
                formatter.write(f"{'':>{formatter.current_indent}}{line}\n")  # never wrapped: pasted whole

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """The usage line names arguments as their help does: RUN, [RUN], RUNS..."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                pieces += param.get_usage_pieces(ctx)
            else:
                pieces.append(_argument(param) if param.required else f"[{_argument(param)}]")
        return pieces + ([self.subcommand_metavar] if hasattr(self, "subcommand_metavar") else [])


def _panel_order(name: str, records: list[tuple[str, str]]) -> int:
    """Arguments, then the command's own options (`sample --prompt`, `--chat`), then the generated
    panels (the sampler's, a training run's), then an Options panel that holds only --help."""
    if name == "Arguments":
        return 0
    if name == "Options":
        return 1 if len(records) > 1 else 3
    return 2


METAVARS = {"str": "TEXT", "list[str]": "TEXT", "int": "N", "float": "X", "path": "PATH"}
METAVARS |= {"int range": "N", "float range": "X"}
STATED_DEFAULT = re.compile(r"\s*\(default:? ([^()]*)\)")  # "Optimizer steps (default: one epoch)."


def _help_record(param: Any, ctx: Any) -> tuple[str, str] | None:
    """(the flags with their value's kind, the help with its default) of one parameter."""
    record = param.get_help_record(ctx)
    if record is None:
        return None
    text = re.sub(r"default: \((.*?)\)(?=[;\]])", r"default: \1", record[1])  # typer's "(text)"
    if param.param_type_name == "argument":
        required = param.required and "[required]" not in text
        return _argument(param), text + "  [required]" * required
    short_first = sorted(param.opts, key=lambda opt: len(opt) - len(opt.lstrip("-")))
    names = ", ".join(short_first) + "".join(f" / {opt}" for opt in param.secondary_opts)
    if not param.is_flag:
        names += f" {_metavar(param, ctx)}"
    shows_default = param.expose_value and not param.is_eager  # not --help, --version, completion
    return names, _with_default(text, param.is_flag) if shows_default else text


def _argument(param: Any) -> str:
    return param.name.upper() + ("..." if param.nargs != 1 else "")


def _metavar(param: Any, ctx: Any) -> str:
    if param.metavar:
        return param.metavar
    kind = param.display_type(ctx).strip("<>")  # typer's "<int>", "<list[str]>", "<a|b>"
    return METAVARS.get(kind, "{" + kind.replace("|", ",") + "}")


def _with_default(text: str, switch: bool) -> str:
    """Every option says its default: one the help states in words wins over the field's value
    (`--seed`: the global seed, not 0), and an unset one says what it is (off, none)."""
    stated = STATED_DEFAULT.search(text)
    if stated:
        text = re.sub(r"\s*\[default: [^]]*\]", "", STATED_DEFAULT.sub("", text, count=1))
        return f"{text}  [default: {stated.group(1)}]"
    if re.search(r"\bdefault\b", text) or "[required]" in text:
        return text
    return f"{text}  [default: {'off' if switch else 'none'}]"


# ctx.meta key: a function of the command's context that the root callback leaves to run as the
# command starts (after its options parsed), so that --help and completion never run it
BEFORE_COMMAND = "llada.before_command"


def before_command(ctx: Any) -> None:
    """Run what the root callback left to run as the command starts, once."""
    before = ctx.meta.pop(BEFORE_COMMAND, None)
    if before is not None:
        before(ctx)


class HelpCommand(PlainHelp, TyperCommand):
    def invoke(self, ctx: Any) -> Any:
        before_command(ctx)
        return super().invoke(ctx)


class LaterSetupCommand(PlainHelp, TyperCommand):
    """A command that calls `before_command` itself where it needs torch, or never: it starts
    without loading torch (`pipeline` sets torch's threads before its first step, not for a dry run)."""


class HelpGroup(PlainHelp, TyperGroup):
    pass


# The commands in the order of the work: get data, train, use, measure, manage.
WORKFLOW = (
    "data", "pretrain", "sft", "dpo", "grpo", "sample", "chat", "compare", "eval", "sweep", "plot", "runs",
    "export", "serve", "pipeline",
)  # fmt: skip


class RootGroup(HelpGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: WORKFLOW.index(name) if name in WORKFLOW else len(WORKFLOW))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # here rather than in main, so that shell completion reads the line the same way
        return super().parse_args(ctx, hoist_globals(self, args))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        tolerant_streams()
        try:
            code = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except typer.Abort:
            typer.echo("aborted", err=True)
            code = 1
        except Exception as error:
            if _group_alone(error):  # its help, as git and litgpt print
                typer.echo(error.ctx.get_help())  # type: ignore[attr-defined]
                code = 0
            elif not hasattr(error, "format_message"):
                raise
            else:
                typer.echo(f"error: {_one_line(error)}", err=True)
                code = getattr(error, "exit_code", 2)
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def _main_shell_completion(
        self, ctx_args: MutableMapping[str, Any], prog_name: str, complete_var: str | None = None
    ) -> None:
        """Shell completion, once the shell's words are known good (bash's COMP_CWORD a number)."""
        variable = complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()
        cword = os.environ.get("COMP_CWORD", "")
        bash = os.environ.get(variable, "").startswith("complete_bash")
        if bash and ("COMP_WORDS" not in os.environ or not (cword.isascii() and cword.isdigit())):
            typer.echo(
                f"error: bash completion needs COMP_WORDS and COMP_CWORD, the number of the word to "
                f"complete; got COMP_CWORD={cword!r}",
                err=True,
            )
            sys.exit(2)
        super()._main_shell_completion(ctx_args, prog_name, complete_var)


def _group_alone(error: Exception) -> bool:
    """`llada`, `llada --home H` or `llada runs`: a group given no command (click >= 8.2 raises
    NoArgsIsHelpError when nothing follows it, "Missing command" when only options do)."""
    missing = type(error).__name__ == "UsageError" and getattr(error, "message", "") == "Missing command."
    return type(error).__name__ == "NoArgsIsHelpError" or missing


def _one_line(error: Any) -> str:
    message = " ".join(error.format_message().split()).replace("Value error, ", "")  # typer's prefix
    opts = getattr(getattr(error, "param", None), "opts", None) or []
    if opts and not any(opt in message for opt in opts):  # name the option when click did not
        message = f"{opts[0]}: {message}"
    context = getattr(error, "ctx", None)
    where = context.command_path if context is not None else ""
    return f"{where}: {message}" if where else message


def hoist_globals(root: Any, words: list[str]) -> list[str]:
    """`words` with the global options found after the command path moved before it."""
    takes_value = {opt: not p.is_flag for p in root.params for opt in p.opts if opt.startswith("-")}
    front, index = [], 0
    while index < len(words) and words[index].startswith("-"):  # globals already in front
        step = 2 if takes_value.get(words[index].split("=")[0]) and "=" not in words[index] else 1
        front += words[index : index + step]
        index += step
    command, path = root, []
    while index < len(words) and hasattr(command, "commands") and words[index] in command.commands:
        command = command.commands[words[index]]
        path.append(words[index])
        index += 1
    if not path:
        return words
    own = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    own_value = {opt for p in command.params if not getattr(p, "is_flag", False) for opt in p.opts}
    hoisted, rest = [], []
    rest_words = words[index:]
    i = 0
    while i < len(rest_words):
        word, name = rest_words[i], rest_words[i].split("=")[0]
        if word == "--":
            rest += rest_words[i:]
            break
        if name in takes_value and name not in own:
            step = 2 if takes_value[name] and "=" not in word else 1
            hoisted += rest_words[i : i + step]
            i += step
            continue
        step = 2 if name in own_value and "=" not in word and name.startswith("-") else 1
        rest += rest_words[i : i + step]
        i += step
    return [*front, *hoisted, *path, *rest]
