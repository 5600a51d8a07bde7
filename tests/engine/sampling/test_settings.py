"""Sampler settings (sampling/settings.py): defaults, the room a prompt leaves, errors that say the fix."""

from __future__ import annotations

import pytest

from llada_cli.engine.errors import UsageError
from llada_cli.engine.sampling.ar import (
    ARSettings,
)
from llada_cli.engine.sampling.diffusion import (
    DiffusionSettings,
    resolve_settings,
)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(max_new_tokens=0), "`max_new_tokens` must be at least 1, got 0"),
        (dict(temperature=-0.5), "`temperature` must be at least 0, got -0.5"),
        (dict(top_k=-1), "`top_k` must be at least 0, got -1"),
        (dict(top_p=0.0), "`top_p` must be more than 0, got 0"),
        (dict(top_p=1.5), "`top_p` must be at most 1, got 1.5"),
        (dict(repetition_penalty=float("nan")), "`repetition_penalty` must be a finite number, got nan"),
    ],
)
def test_settings_errors(settings, message):
    with pytest.raises(UsageError, match=message):
        ARSettings(**settings)


def test_defaults_derive_from_gen_length():
    assert resolve_settings(DiffusionSettings(gen_length=128)).block_length == 32
    default = resolve_settings(DiffusionSettings(gen_length=128))
    assert (default.threshold, default.steps) == (0.9, None)  # confidence-threshold decoding by default
    assert resolve_settings(DiffusionSettings(gen_length=128, exact=True)).steps == 128
    assert resolve_settings(DiffusionSettings(gen_length=128, steps=64)).threshold is None
    assert resolve_settings(DiffusionSettings(gen_length=128, remasking="random")).threshold is None
    assert resolve_settings(DiffusionSettings(gen_length=100)).block_length == 100
    assert resolve_settings(DiffusionSettings(gen_length=16)).block_length == 16
    assert resolve_settings(DiffusionSettings(gen_length=64, threshold=0.9)).steps is None
    for settings in (DiffusionSettings(gen_length=96), DiffusionSettings(threshold=0.7, edit_threshold=0.5)):
        assert resolve_settings(resolve_settings(settings)) == resolve_settings(settings)  # idempotent


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            dict(gen_length=100, block_length=32),
            r"`gen_length` 100 must be a multiple of `block_length` 32: use 96 or 128",
        ),
        (
            dict(gen_length=128, block_length=32, steps=90),
            r"`steps` 90 must be a multiple of the number of blocks \(4\): use 88 or 92",
        ),
        (dict(gen_length=128, steps=256), r"`steps` 256 is more than `gen_length` 128"),
        (dict(gen_length=32, block_length=64), r"`block_length` 64 must be between 1 and `gen_length` 32"),
        (dict(edit_threshold=0.5, exact=True), r"`edit_threshold` needs `threshold`"),
        (
            dict(threshold=0.8, exact=True),
            r"`exact` decodes a fixed number of slots per step: drop `threshold`",
        ),
        (dict(mode="speed", exact=True), r"`exact` decodes a fixed number .*: drop `mode` speed"),
        (
            dict(gen_length=64, block_length=16, method="fixed_length"),
            r"fixed_length decodes the answer as one",
        ),
        (dict(threshold=0.9, remasking="random"), r"use `remasking` low_confidence, margin or entropy"),
        (dict(threshold=0.9, steps=64), r"`steps` has no effect with `threshold`"),
        (dict(threshold=0.0), r"`threshold` must be more than 0, got 0"),
        (dict(threshold=0.7, edit_threshold=1.5), r"`edit_threshold` must be less than 1, got 1.5"),
        (dict(temperature=-1.0), r"`temperature` must be at least 0, got -1"),
        (dict(cfg_scale=-1.0), r"`cfg_scale` must be at least 0, got -1"),
        (dict(cache="full"), r"`cache` 'full' is unknown: use one of none, prefix, dual"),
        (dict(remasking="topk"), r"`remasking` 'topk' is unknown"),
    ],
)
def test_settings_errors_explain_the_fix(settings, message):
    with pytest.raises(UsageError, match=message):
        resolve_settings(DiffusionSettings(**settings))


@pytest.mark.parametrize(
    ("prompt", "options", "layout"),
    [
        (10, {}, (32, 32)),  # 54 slots left: one whole block of 32
        (40, {}, (24, 24)),  # 24 left: less than a block, so one block of 24
        (10, {"block_length": 8}, (48, 8)),  # whole blocks of 8
        (10, {"method": "fixed_length"}, (54, 54)),  # one block: all the room
        (2, {}, (32, 32)),  # a 64-token context: never more than fits
    ],
)
def test_the_default_answer_fills_the_room_the_prompt_leaves_in_whole_blocks(prompt, options, layout):
    settings = resolve_settings(DiffusionSettings(**options), room=64 - prompt)
    assert (settings.gen_length, settings.block_length) == layout
    assert resolve_settings(DiffusionSettings(), room=1000).gen_length == 128  # long contexts: 128


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(threshold=1.5), r"`threshold` must be at most 1, got 1.5"),  # a confidence is in \(0, 1\]
        (dict(block_length=0), r"`block_length` must be at least 1, got 0"),  # not "the default"
        (dict(steps=0), r"`steps` must be at least 1, got 0"),
        (
            dict(mode="quality", threshold=0.8),
            r"`mode` quality sets `threshold` 0.7 and `edit_threshold` 0.5: drop `threshold` 0.8",
        ),
        (dict(mode="speed", edit_threshold=0.3), r"`mode` speed sets `threshold` 0.5 and no editing"),
    ],
)
def test_values_that_cannot_work_are_refused_when_the_settings_are_made(settings, message):
    with pytest.raises(UsageError, match=message):
        DiffusionSettings(**settings)


def test_a_mode_with_its_own_values_is_the_mode():
    given = DiffusionSettings(mode="quality", threshold=0.7)
    resolved = resolve_settings(given)
    assert (resolved.threshold, resolved.edit_threshold) == (0.7, 0.5)
    assert resolve_settings(resolved) == resolved
    assert resolve_settings(DiffusionSettings(threshold=1.0)).threshold == 1.0
