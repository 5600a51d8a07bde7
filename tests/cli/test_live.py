"""The live denoising view (cli/live.py): placeholders, readable text, wrapping."""

from __future__ import annotations

import io

import torch
from rich.console import Console

from llada_cli import api
from llada_cli.cli.live import PLACEHOLDER, LiveDenoising, readable


def test_live_view_shows_placeholders_for_masked_slots(pipeline):
    model = api.load("dlm-chat", home=pipeline.home, device="cpu")
    tokenizer = model.tokenizer
    region = torch.tensor([[*tokenizer.encode("Hi"), tokenizer.mask_id, tokenizer.mask_id]])
    text = LiveDenoising(tokenizer, enabled=False).render(3, region).plain
    assert text == "step    3  Hi" + PLACEHOLDER * 2
    # end-of-text padding shows as nothing, and a character cut by a mask is never shown in half
    euro = tokenizer.encode("€")  # several byte-level tokens
    padded = [*tokenizer.encode("ok"), tokenizer.eos_id, tokenizer.eos_id]
    assert readable(tokenizer, padded) == "ok"
    assert "\ufffd" not in readable(tokenizer, [euro[0], tokenizer.mask_id, *euro[1:]])
    assert readable(tokenizer, euro) == "€"
    # a long answer wraps at the terminal's width instead of running off it
    long = torch.tensor([tokenizer.encode("word " * 60)])
    console = Console(width=80, file=io.StringIO())
    lines = console.render_lines(LiveDenoising(tokenizer, enabled=False).render(1, long), console.options)
    assert len(lines) > 1 and all(sum(len(seg.text) for seg in line) <= 80 for line in lines)
