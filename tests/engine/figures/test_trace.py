"""The sampling-trace heatmap (figures/trace.py)."""

from __future__ import annotations

from llada_cli.engine.figures.trace import MAX_PANELS, Trace, trace_figure


def synthetic_trace(prompts: int = 2) -> Trace:
    """Two blocks of 4; the last two positions end in EOS (id 1); position 0 is edited at step 3."""
    settings = {"gen_length": 8, "block_length": 4, "steps": 8, "threshold": None}
    settings |= {"remasking": "low_confidence", "method": "semi_ar_padding", "cache": "none"}
    header = {"kind": "header", "run": "dlm", "prompts": [f"question {i}" for i in range(prompts)]}
    events = []
    for row in range(prompts):
        for step, position in enumerate([1, 0, 3, 2, 5, 4, 7, 6]):
            token = 1 if position >= 6 else 10 + position
            events.append(
                {"kind": "commit", "step": step, "position": position, "token_id": token, "row": row}
            )
        events.append({"kind": "edit", "step": 3, "position": 0, "token_id": 42, "row": row})
    return Trace(events, {**header, "settings": settings, "eos_ids": [1, 2]})


def panels_of(fig) -> list:
    return [axis for axis in fig.axes if axis.get_title(loc="left").startswith("prompt ")]


def test_trace_heatmap_draws_every_prompt_with_eos_edits_and_settings():
    fig = trace_figure(synthetic_trace())
    panels = panels_of(fig)
    assert [p.get_title(loc="left") for p in panels] == [
        "prompt 1 of 2: question 0",
        "prompt 2 of 2: question 1",
    ]
    title = fig.get_suptitle()
    assert "dlm: decoding order, exact sampler, low_confidence remasking, semi_ar_padding" in title
    assert "8 steps, gen length 8, block length 4" in title
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "EOS (end of answer)" in legend and "edit (rewritten after unmasking)" in legend
    for panel in panels:
        unmasked, eos = (image.get_array() for image in panel.get_images())
        assert unmasked[1, 0] == 0 and unmasked[6, 7] == 7 and unmasked.mask[6, 6]  # still masked
        assert [tuple(map(int, cell)) for cell in zip(*(~eos.mask).nonzero(), strict=True)] == [
            (6, 7),
            (7, 6),
            (7, 7),
        ]
        (edits,) = panel.collections
        assert edits.get_offsets().tolist() == [[3, 0]]


def test_trace_heatmap_of_a_large_batch_says_which_prompts_it_shows():
    trace = synthetic_trace(prompts=MAX_PANELS + 3)
    fig = trace_figure(trace)
    assert len(panels_of(fig)) == MAX_PANELS
    assert f"of {MAX_PANELS + 3} shown; --prompts picks others" in fig.get_suptitle()
    picked = trace_figure(trace, [MAX_PANELS + 2])
    assert [p.get_title(loc="left") for p in panels_of(picked)] == [
        f"prompt {MAX_PANELS + 3} of 15: question 14"
    ]
