"""Values read from files are checked against their fields' declared types (engine/typed.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from llada_cli.engine.config import TrainConfig
from llada_cli.engine.errors import UsageError
from llada_cli.engine.typed import check_types, expected


@pytest.mark.parametrize(
    ("value", "hint", "what"),
    [
        (16, int, None),
        ("16", int, "an integer"),
        (True, int, "an integer"),
        (10**30, int, "an integer"),  # more than a machine integer holds
        (3, float, None),
        (0.5, float, None),
        ("x", float, "a number"),
        (False, bool, None),
        (0, bool, "true or false"),
        (None, int | None, None),
        ("a", int | None, "an integer or null"),
        ("ar", Literal["ar", "diffusion"], None),
        ("gpt", Literal["ar", "diffusion"], "one of ar, diffusion"),
        ([1, 2], tuple[int, ...], None),
        ([1, "2"], tuple[int, ...], "a list of integers"),
        ("llada", list[str], "a list of strings"),
        ({"a": 1}, dict[str, int], None),
        ({"a": "1"}, dict[str, int], "an object"),
        ([], dict[str, Any], "an object"),
        ("runs/x", Path, None),
    ],
)
def test_expected_names_what_a_value_should_have_been(value, hint, what):
    assert expected(value, hint) == what


@dataclass(frozen=True)
class Example:
    steps: int = 1
    name: str | None = None


def test_check_types_names_the_field_and_the_value():
    check_types(Example, {"steps": 3, "name": None, "unknown": "ignored"})
    with pytest.raises(UsageError, match=r"^`steps` must be an integer, got '16'$"):
        check_types(Example, {"steps": "16"})
    with pytest.raises(UsageError, match=r"`batch_size` must be an integer, got 'lots'"):
        check_types(TrainConfig, {"batch_size": "lots"})
