"""What both samplers share (sampling/common.py): answers cut at stop strings."""

from __future__ import annotations

from llada_cli.engine.sampling.common import cut_at_stops


def test_stops_cut_the_text_at_the_first_one():
    assert cut_at_stops("one. two. three", (" two", ". t")) == "one"
    assert cut_at_stops("one", ("x", "")) == "one"
