"""The curves figure (figures/curves.py) as a paper's figure, and the sampler sweep's figure."""

from __future__ import annotations

import pytest

from llada_cli.engine.evaluation.sweep import SweepPoint
from llada_cli.engine.figures.curves import collect_series, curves_figure, loss_label, sweep_figure


def steps(losses: list[float], val_every: int = 3) -> list[dict]:
    records = []
    for step, loss in enumerate(losses, start=1):
        record = {"step": step, "tokens": 256 * step, "loss": loss, "lr": 1e-3}
        if step % val_every == 0:
            record["val_loss"] = loss + 0.1
        records.append(record)
    return records


def test_curves_figure_reads_like_a_papers_figure():
    runs = {"a": steps([5 - 0.1 * i for i in range(30)]), "b": steps([8 - 0.2 * i for i in range(30)])}
    found = collect_series(runs, ["loss", "val_loss"], "step", 0.9)
    fig = curves_figure(found, {"a": "ar", "b": "diffusion"}, "step", False, "a vs b")
    axis = fig.axes[0]
    lines = {line.get_label(): line for line in axis.get_lines()}
    assert set(lines) == {"a train", "a validation", "b train", "b validation"}
    assert lines["a train"].get_color() == lines["a validation"].get_color()
    assert lines["b train"].get_color() == lines["b validation"].get_color()
    assert lines["a train"].get_color() != lines["b train"].get_color()
    assert {lines[f"{run} train"].get_linestyle() for run in "ab"} == {"-"}
    assert {lines[f"{run} validation"].get_linestyle() for run in "ab"} == {"--"}
    # smoothing: the training series is an EMA, validation is drawn as measured
    assert list(lines["a validation"].get_ydata()) == [r["val_loss"] for r in runs["a"] if "val_loss" in r]
    assert list(lines["a train"].get_ydata()) != [r["loss"] for r in runs["a"]]
    assert axis.get_xlabel() == "step"
    ylabel = " ".join(axis.get_ylabel().split())
    assert "nats per token" in ylabel and "AR cross entropy" in ylabel and "diffusion ELBO bound" in ylabel
    legend = axis.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["a (AR)", "b (diffusion)", "train (EMA 0.9)", "validation"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= axis.get_window_extent(renderer).x1  # beside the axes


def test_loss_axis_names_the_objective_and_tokens_is_an_x_axis():
    assert loss_label(["ar", "ar"]) == "loss (nats per token)"
    assert loss_label(["diffusion"]) == "ELBO bound (nats per token)"
    found = collect_series({"d": steps([3.0, 2.0, 1.0])}, ["loss"], "tokens", 0.0)
    fig = curves_figure(found, {"d": "diffusion"}, "tokens", False, "d")
    axis = fig.axes[0]
    assert axis.get_ylabel() == "ELBO bound (nats per token)" and axis.get_xlabel() == "tokens seen"
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["d (diffusion)", "train"]
    assert list(axis.get_lines()[0].get_xdata()) == [256, 512, 768]


@pytest.mark.parametrize(
    "speeds",
    [[300 + i for i in range(10)] + [3000], [300.0] * 11, [100 * 1.1**i for i in range(11)]],
    ids=["close", "on-one-spot", "narrow-axis"],
)
def test_sweep_numbers_cover_no_other_number_and_the_speed_axis_reads_in_plain_numbers(speeds):
    points = [
        SweepPoint(f"setting {i}", {}, 0.5, speed, 1.0, 1.0, i % 2 == 0) for i, speed in enumerate(speeds)
    ]
    fig = sweep_figure(points, "close points")
    axis = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in axis.texts]
    assert [label.get_text() for label in axis.texts] == [str(n) for n in range(1, 12)]
    assert not [(i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes[:i]) if a.overlaps(b)]
    frame = axis.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    ticks = [label.get_text() for label in axis.get_xticklabels()]
    assert len(ticks) >= 2 and all(float(t.replace(",", "")) > 0 for t in ticks)  # 1,000, never 10³
    assert all(label.get_text() == "" for label in axis.get_xticklabels(minor=True))
