"""The root command's behaviour: global options anywhere on the line, and one-line usage errors.

`llada sample RUN --home X` means `llada --home X sample RUN`: a global option given after the
subcommand moves in front of it, unless that command has an option of the same name (`sample
--seed` is the sampling seed). Usage errors (a missing argument, an unknown option, a bad value)
print one `error:` line, as runtime errors do, instead of click's usage box.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


class PlainHelp:
    """Help as plain text grouped by panel: every flag and its aliases in full on their line, the
    help wrapped beneath when they are long, every default shown, and brackets left as written.
    (The rich help table cut flag names at 80 columns and read `[a,b]` as markup.)"""

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
        for name in sorted(sections, key=lambda n: (n != "Arguments", n == "Options")):
            with formatter.section(name):
                formatter.write_dl(sections[name], col_max=34)
        if hasattr(self, "format_commands"):
            self.format_commands(ctx, formatter)


METAVARS = {"str": "TEXT", "list[str]": "TEXT", "int": "N", "float": "X", "path": "PATH"}


def _help_record(param: Any, ctx: Any) -> tuple[str, str] | None:
    """(the flags with their value's kind, the help with its default) of one parameter."""
    record = param.get_help_record(ctx)
    if record is None:
        return None
    names, text = record
    kind = param.display_type(ctx).strip("<>")  # typer's "<int>", "<list[str]>", "<a|b>"
    names = names.removesuffix(f" <{kind}>")
    if param.param_type_name == "argument":
        names = names.upper()
    elif not param.is_flag:
        names += f" {METAVARS.get(kind, '{' + kind.replace('|', ',') + '}')}"
    text = re.sub(r"\[default: \((.*?)\)\]", r"[default: \1]", text)
    if param.param_type_name == "argument" and param.required:
        text += "  [required]"
    return names, text


class HelpCommand(PlainHelp, TyperCommand):
    pass


class HelpGroup(PlainHelp, TyperGroup):
    pass


class RootGroup(HelpGroup):
    def main(
        self, args: Any = None, prog_name: str | None = None, standalone_mode: bool = True, **extra: Any
    ) -> Any:
        words = hoist_globals(self, list(sys.argv[1:] if args is None else args))
        try:
            code = super().main(words, prog_name, standalone_mode=False, **extra)
        except typer.Abort:
            typer.echo("aborted", err=True)
            code = 1
        except Exception as error:  # click's usage errors (vendored by typer) carry their exit code
            if not hasattr(error, "format_message"):
                raise
            typer.echo(f"error: {_one_line(error)}", err=True)
            code = getattr(error, "exit_code", 2)
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _one_line(error: Any) -> str:
    message = " ".join(error.format_message().split())
    hint = getattr(error, "param_hint", None) or getattr(getattr(error, "param", None), "opts", None)
    if isinstance(hint, (list, tuple)):
        hint = " / ".join(hint)
    context = getattr(error, "ctx", None)
    where = context.command_path if context is not None else ""
    if hint and hint not in message:
        message = f"{hint}: {message}"
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
