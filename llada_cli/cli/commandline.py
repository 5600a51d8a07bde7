"""Tables of options (a `--config` file, an experiment file) checked against the command tree.

A table's keys are a command's options under their flag names (`gen-length`, `json`) or
parameter names (`gen_length`, `as_json`). An unknown table or key is refused with the closest
valid name, so a typo never passes silently. Commands and parameters are click's (typer's
vendored click), read by duck typing. For an experiment step, a table becomes the words
of a command line (`table_words`), which the command's own parser then reads (`parse_words`).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..engine.data.lines import check_file
from ..engine.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


MAX_TABLES_BYTES = 16 << 20  # options and pipelines are a few kB: anything near this is not one


def load_tables(path: Path) -> dict[str, Any]:
    """A TOML file, or YAML of the same shape (.yaml, .yml), as nested dicts whose keys are names."""
    check_file(path)  # a named pipe would wait for a writer, /dev/zero never end
    if path.stat().st_size > MAX_TABLES_BYTES:
        raise UsageError(f"{path}: {path.stat().st_size:,} bytes is too large for a file of options")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file (expected TOML or YAML)") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:  # the parsers recurse once per level: a file nested thousands deep exhausts the stack
        tables = _parsed(path, text)
    except RecursionError:
        raise UsageError(f"{path}: nested too deeply to be a file of options") from None
    _check_keys(tables, path)
    return tables


def _parsed(path: Path, text: str) -> dict[str, Any]:
    if path.suffix in (".yaml", ".yml"):
        import yaml  # only when a YAML file is given

        try:
            tables = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise UsageError(f"{path}: invalid YAML ({' '.join(str(error).split())})") from None
        if tables is None:
            return {}
        if not isinstance(tables, dict):
            raise UsageError(f"{path}: expected a mapping of tables at the top, got {type(tables).__name__}")
        return tables
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: invalid TOML ({error})") from None


def _check_keys(tables: dict[str, Any], path: Path) -> None:
    """Every key of every table is a name: YAML also reads `1:`, `yes:` or `~:` as keys (a number,
    true, null). Walked without recursion, each table once (YAML aliases may share one)."""
    pending: list[Any] = [tables]
    seen: set[int] = set()
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, list):
            pending += value
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise UsageError(
                        f"{path}: key {key!r} is not a name (YAML reads it as {type(key).__name__}); "
                        "keys are option and table names, e.g. gen-length"
                    )
                pending.append(item)


def subcommand(root: Any, path: Iterable[str]) -> Any | None:
    """The command at `path` under `root` (e.g. ("pretrain", "ar")), or None."""
    command: Any = root
    for name in path:
        if name not in getattr(command, "commands", {}):
            return None
        command = command.commands[name]
    return command


def _spellings(param: Any) -> list[str]:
    """A parameter's names as a table key may write them: its long flags and its own name."""
    flags = [opt.lstrip("-") for opt in param.opts if opt.startswith("--")]
    return [*flags, param.name or ""]


def _key(key: str) -> str:
    return key.replace("_", "-")


def find_param(command: Any, key: str, where: str) -> Any:
    """The parameter a table key names, or a usage error naming the closest key."""
    by_key = {_key(name): param for param in command.params for name in _spellings(param) if name}
    by_key.pop("help", None)
    if _key(key) in by_key:
        return by_key[_key(key)]
    raise UsageError(f"{where}: unknown key '{key}'{_did_you_mean(_key(key), by_key)}")


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def unknown_table(name: str, valid: Iterable[str], where: str) -> UsageError:
    return UsageError(f"{where}: unknown table [{name}]{_did_you_mean(name, valid)}")


def command_tables(root: Any, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every command under `root` by its table name: "sample", "pretrain.ar", "runs.import"."""
    tables: dict[str, Any] = {}
    for name, command in getattr(root, "commands", {}).items():
        path = (*prefix, name)
        if hasattr(command, "commands"):
            tables.update(command_tables(command, path))
        else:
            tables[".".join(path)] = command
    return tables


def default_map(root: Any, config: dict[str, Any], source: str) -> dict[str, Any]:
    """A `--config` file as click's default_map (parameter names), every table and key checked.

    Top-level keys are the global options; each table is a command (`[sample]`, `[pretrain.ar]`).
    """
    tables = command_tables(root)
    groups = {name.split(".")[0] for name in tables}
    result: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            if key not in tables and key not in groups:
                raise unknown_table(key, [*tables, *groups], source)
            result[key] = _command_defaults(root, (key,), value, tables, source)
        elif key in tables or key in groups:
            raise UsageError(f"{source}: '{key}' must be a table of options, e.g. [{key}]")
        else:
            find_param(root, key, source)  # a typo gets its closest name; a real one is explained
            raise UsageError(
                f"{source}: '{key}' is a global option; give it on the command line, before the command"
            )
    return result


def _command_defaults(
    root: Any, path: tuple[str, ...], table: dict[str, Any], tables: dict[str, Any], source: str
) -> dict[str, Any]:
    name = ".".join(path)
    command = tables.get(name)
    result: dict[str, Any] = {}
    for key, value in table.items():
        if command is None:  # a group, e.g. [pretrain]: its tables are its commands
            if not isinstance(value, dict):
                raise UsageError(f"{source}: [{name}] holds tables such as [{name}.ar], not '{key}'")
            if f"{name}.{key}" not in tables and not any(t.startswith(f"{name}.{key}.") for t in tables):
                raise unknown_table(f"{name}.{key}", tables, source)
            result[key] = _command_defaults(root, (*path, key), value, tables, source)
        else:
            if isinstance(value, dict):
                raise unknown_table(f"{name}.{key}", tables, source)
            result[find_param(command, key, f"{source} [{name}]").name] = value
    return result


def table_words(
    command: Any, table: dict[str, Any], where: str, labels: Mapping[str, str] | None = None
) -> list[str]:
    """The command-line words that give `command` the values of `table` (arguments first).
    `labels`: how a message names each key (default: `where` and the key)."""
    arguments: list[str] = []
    options: list[str] = []
    for key, value in table.items():
        param = find_param(command, key, where)
        label = (labels or {}).get(key, f"{where} {key}")
        if param.param_type_name == "argument":
            values = value if isinstance(value, list) else [value]
            arguments += [_word(param, v, label) for v in values]
        else:
            options += _option_words(param, value, label)
    return [*arguments, *options]


def parse_words(
    command: Any,
    words: list[str],
    parent: Any,
    table: Mapping[str, Any],
    labels: Mapping[str, str],
    where: str,
) -> Any:
    """The values `command` takes from `words` (made from `table`), read by its own parser as a run
    would read them (types, ranges, choices, required arguments) without running it. A refusal
    names the key that gave the value as `labels` says (default: `where` and the key)."""
    try:
        return command.make_context(command.name, list(words), parent=parent).params
    except Exception as error:
        if not hasattr(error, "format_message"):  # click's errors have it; anything else is a bug
            raise
        param = getattr(error, "param", None)
        key = next((k for k in table if param is not None and find_param(command, k, where) is param), None)
        message = " ".join(str(getattr(error, "message", "")).split())
        if key is None or not message:  # a missing argument
            raise UsageError(f"{where}: {' '.join(error.format_message().split())}") from None
        value = table[key]
        got = "" if str(value) in message else f" (got {value!r})"
        raise UsageError(f"{labels.get(key, f'{where} {key}')}: {message}{got}") from None


def _option_words(param: Any, value: Any, where: str) -> list[str]:
    flag = next(opt for opt in param.opts if opt.startswith("--"))
    if param.is_flag:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        if value:
            return [flag]
        if param.secondary_opts:
            return [param.secondary_opts[0]]
        return []
    values = value if isinstance(value, list) else [value]
    if len(values) > 1 and not param.multiple:
        raise UsageError(f"{where}: takes one value, got a list")
    words: list[str] = []
    for item in values:
        words += [flag, _word(param, item, where)]
    return words


def _word(param: Any, value: Any, where: str) -> str:
    """One value as a command-line word: a number, a string or true/false; a path is a string."""
    if isinstance(value, (dict, list)):
        raise UsageError(f"{where}: expected a number or a string, got {value!r}")
    if param.type_descriptor.annotation is Path and not isinstance(value, str):
        raise UsageError(f"{where}: expected a path (a string in quotes), got {value!r}")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
