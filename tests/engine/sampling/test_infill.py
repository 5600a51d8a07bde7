"""Infilling (sampling/infill.py): templates by hand, only the slots change, the step counts of the
fixed and threshold samplers, and the options that do not apply."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from llada_cli.engine.errors import UsageError
from llada_cli.engine.sampling.infill import generate_infill, infill_settings, infill_template
from llada_cli.engine.sampling.settings import DiffusionSettings
from tests.engine.objectives.helpers import EOS, MASK, tiny_model

# one id per character, so a template's ids can be read by hand
CHARS = SimpleNamespace(encode=lambda text: [ord(c) % 50 + 1 for c in text])


def test_a_template_is_its_text_with_n_mask_ids_per_slot():
    ids, slots = infill_template("ab[MASK:3]c[MASK]", CHARS, MASK)
    a, b, c = CHARS.encode("abc")
    assert ids == [a, b, MASK, MASK, MASK, c, MASK]
    assert slots == [False, False, True, True, True, False, True]
    for bad, message in (("ab", "no slot to fill"), ("a[MASK:0]", "at least one token")):
        with pytest.raises(UsageError, match=message):
            infill_template(bad, CHARS, MASK)


def test_only_the_slots_change_and_each_step_commits_its_share():
    model = tiny_model(causal=False).eval()
    rows = [infill_template("ab[MASK:3]cd", CHARS, MASK), infill_template("[MASK]xyz", CHARS, MASK)]
    exact = DiffusionSettings(exact=True)
    filled = generate_infill(model, rows, exact, MASK, {0}, EOS)
    for (ids, slots), (row, generation) in zip(rows, filled, strict=True):
        assert [t for t, s in zip(row, slots, strict=True) if not s] == [
            t for t, s in zip(ids, slots, strict=True) if not s
        ]
        assert MASK not in row and len(generation.token_ids) == sum(slots)
        assert generation.forward_passes == sum(slots)  # exact: one slot a step by default
    [(_, two_steps)] = generate_infill(
        model, rows[:1], DiffusionSettings(exact=True, steps=2), MASK, {0}, EOS
    )
    assert two_steps.forward_passes == 2
    [(_, threshold)] = generate_infill(model, rows[:1], DiffusionSettings(threshold=0.01), MASK, {0}, EOS)
    assert threshold.forward_passes == 1  # every slot at least 1% confident commits at once
    capped = DiffusionSettings(threshold=0.01, max_decode_per_step=1)
    [(_, one_a_step)] = generate_infill(model, rows[:1], capped, MASK, {0}, EOS)
    assert one_a_step.forward_passes == 3  # at most one of the three slots a step
    again = generate_infill(model, rows, exact, MASK, {0}, EOS)  # deterministic at temperature 0
    assert [(row, g.token_ids) for row, g in again] == [(row, g.token_ids) for row, g in filled]


def test_options_for_answers_after_a_prompt_are_refused():
    for options in (
        {"cache": "prefix"},
        {"gen_length": 8},
        {"mode": "speed"},
        {"compile": True},
        {"repeat_window": 5},
    ):
        with pytest.raises(UsageError, match="not for filling slots"):
            infill_settings(DiffusionSettings(**options))
    assert infill_settings(DiffusionSettings()).threshold == 0.9


def test_a_slot_may_open_the_text_under_the_logit_shift_read_after_a_document_boundary():
    model = tiny_model(causal=False, logit_shift=True).eval()
    rows = [infill_template("[MASK]ab", CHARS, MASK)]
    [(row, generation)] = generate_infill(model, rows, DiffusionSettings(exact=True), MASK, {0}, EOS)
    assert MASK not in row and row[1:] == CHARS.encode("ab") and len(generation.token_ids) == 1
    with torch.no_grad():  # the slot is the argmax after the EOS, the text after it visible
        logits = model(torch.tensor([[EOS, MASK, *CHARS.encode("ab")]]))
    assert row[0] == int(logits[0, 1, :MASK].argmax())
