"""The live denoising view (cli/live.py): placeholders, readable text, wrapping, the frame rate."""

from __future__ import annotations

import io
import math

import pytest
import torch
from rich.console import Console

from llada_cli import api
from llada_cli.cli.live import PLACEHOLDER, LiveDenoising, readable
from llada_cli.engine.errors import UsageError


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


class FakeTime:
    """A clock that moves only when waited on or told to (`spend`), and the waits asked for."""

    def __init__(self) -> None:
        self.now, self.waits = 0.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def spend(self, seconds: float) -> None:
        self.now += seconds


class Letters:
    """The little of a tokenizer the view uses: ids are letters, 0 ends the text, 1 is a mask."""

    eos_id = im_end_id = 0
    mask_id = 1

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=80)


def test_each_frame_stays_up_one_over_fps_seconds_the_last_one_too():
    time = FakeTime()
    view = LiveDenoising(Letters(), True, fps=4, console=terminal(), clock=time.clock, sleep=time.sleep)
    frames = [[1, 1, 1], [ord("a"), 1, 1], [ord("a"), ord("b"), 1], [ord("a"), ord("b"), ord("c")]]
    with view:
        for step, frame in enumerate(frames):
            view.update(step, torch.tensor([frame]))
            time.spend(0.1)  # a step of the model: only what is left of the 0.25 s is waited
    assert time.waits == pytest.approx([0.15] * len(frames))  # 3 between frames, 1 after the last
    assert view.console.file.getvalue().count("step") >= len(frames)


def test_without_a_frame_rate_every_step_is_drawn_and_none_waited_for():  # chat's view
    time = FakeTime()
    view = LiveDenoising(Letters(), True, fps=None, console=terminal(), clock=time.clock, sleep=time.sleep)
    with view:
        for step in range(3):
            view.update(step, torch.tensor([[1, 1]]))
    assert time.waits == [] and view.console.file.getvalue().count("step") >= 3


def test_off_a_terminal_nothing_is_drawn_or_waited_for():
    time = FakeTime()
    console = Console(file=io.StringIO(), force_terminal=False)
    view = LiveDenoising(Letters(), True, fps=4, console=console, clock=time.clock, sleep=time.sleep)
    assert not view.enabled
    with view:
        view.update(0, torch.tensor([[1, 1]]))
    assert time.waits == [] and console.file.getvalue() == ""


@pytest.mark.parametrize(
    ("fps", "message"),
    [
        (0.0, "more than 0"),
        (-2.0, "more than 0"),
        (math.nan, "a finite number"),
        (math.inf, "a finite number"),
    ],
)
def test_a_frame_rate_that_is_not_a_positive_number_is_refused(fps, message):
    with pytest.raises(UsageError, match=f"--live-fps must be {message}"):
        LiveDenoising(Letters(), True, fps=fps, console=terminal())
