"""`llada plot`: the curves figure as a paper's figure, the text chart's shared scale, where the
figure goes, damaged metrics.jsonl files, and the sampling-trace heatmap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llada_cli.cli.text_chart import GUTTER
from llada_cli.engine.config import ModelConfig
from llada_cli.engine.figures.curves import collect_series, curves_figure, loss_label
from llada_cli.engine.figures.trace import MAX_PANELS, Trace, read_trace, trace_figure
from llada_cli.engine.runs.record import RunInfo

PNG = b"\x89PNG\r\n\x1a\n"


def steps(losses: list[float], val_every: int = 3) -> list[dict]:
    records = []
    for step, loss in enumerate(losses, start=1):
        record = {"step": step, "tokens": 256 * step, "loss": loss, "lr": 1e-3}
        if step % val_every == 0:
            record["val_loss"] = loss + 0.1
        records.append(record)
    return records


def make_run(home: Path, name: str, kind: str, metrics: list[dict] | bytes) -> Path:
    folder = home / "runs" / name
    folder.mkdir(parents=True)
    RunInfo(name, kind, "pretrain", ModelConfig(), 0).save(folder / "run.json")
    text = metrics if isinstance(metrics, bytes) else "".join(json.dumps(r) + "\n" for r in metrics).encode()
    (folder / "metrics.jsonl").write_bytes(text)
    return folder


@pytest.fixture
def two_runs(cli):
    make_run(cli.home, "a", "ar", steps([5 - 0.1 * i for i in range(30)]))
    make_run(cli.home, "b", "diffusion", steps([8 - 0.2 * i for i in range(30)]))
    return cli


def one_line_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


# ---------------------------------------------------------------------------------------------
# the curves figure


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


# ---------------------------------------------------------------------------------------------
# the text chart


def test_text_chart_shares_one_y_scale_across_runs(cli):
    make_run(cli.home, "high", "ar", [{"step": 1, "loss": 5.0}, {"step": 2, "loss": 2.0}])
    make_run(cli.home, "low", "ar", [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}])
    lines = cli.ok("plot", "high", "low", "--metric", "loss", "--text", columns=80).stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    width = 80 - GUTTER - 1
    rows = [line[GUTTER + 1 :].ljust(width) for line in lines if line[GUTTER : GUTTER + 1] in ("┤", "│")]
    assert len(rows) == 10
    high_at_2 = [i for i, row in enumerate(rows) if row[-1] == "*"]  # high's last point
    low_at_2 = [i for i, row in enumerate(rows) if row[0] == "o"]  # low's first point
    assert high_at_2 == low_at_2 and len(high_at_2) == 1
    assert rows[0][0] == "*" and rows[-1][-1] == "o"  # 5 on top, 1 at the bottom
    assert "  * high train" in lines and "  o low train" in lines
    assert not list(cli.home.rglob("*.png"))


# ---------------------------------------------------------------------------------------------
# where the figure goes


def test_without_out_the_figure_goes_to_the_current_folder(two_runs, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = two_runs.ok("plot", "a", "b", columns=80)
    assert result.stdout.strip() == str(work / "loss-a-b.png")
    assert (work / "loss-a-b.png").read_bytes()[:8] == PNG
    assert not list((two_runs.home / "runs").rglob("*.png"))


def test_out_with_a_suffix_matplotlib_cannot_write_is_refused(two_runs, tmp_path):
    message = one_line_error(two_runs("plot", "a", "b", "--out", str(tmp_path / "x.txt")), 2)
    assert message.startswith(f"--out {tmp_path / 'x.txt'}: cannot write .txt figures")
    assert ".png" in message and ".pdf" in message and ".svg" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_out_a_folder_gets_the_default_name_and_other_formats_work(two_runs, tmp_path):
    folder = tmp_path / "figures"
    folder.mkdir()
    assert two_runs.ok("plot", "a", "b", "--out", str(folder)).stdout.strip() == str(folder / "loss-a-b.png")
    assert (folder / "loss-a-b.png").read_bytes()[:8] == PNG
    pdf = folder / "curves.pdf"
    two_runs.ok("plot", "a", "--metric", "lr", "--out", str(pdf))
    assert pdf.read_bytes()[:5] == b"%PDF-" and sorted(p.name for p in folder.iterdir()) == [
        "curves.pdf",
        "loss-a-b.png",
    ]


def test_an_unwritable_out_is_one_line_naming_the_file_not_a_temporary_one(two_runs, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    message = one_line_error(two_runs("plot", "a", "--out", str(blocker / "loss.png")), 1)
    assert message.startswith(f"cannot write {blocker / 'loss.png'}: ") and ".tmp" not in message


# ---------------------------------------------------------------------------------------------
# damaged metrics.jsonl


GOOD = b'{"step": 1, "loss": 3.0}\n'


def test_a_truncated_last_line_is_a_record_being_written_and_is_skipped(cli, tmp_path):
    make_run(cli.home, "a", "ar", GOOD + b'{"step": 2, "loss": 2.5}\n{"step": 3, "lo')
    cli.ok("plot", "a", "--out", str(tmp_path / "a.png"))
    text = cli.ok("plot", "a", "--text", columns=80).stdout
    assert text.count("*") == 3  # two points and the key's marker


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"[1, 2]", "an array, not a JSON object"),
        (b"5", "a number, not a JSON object"),
        (b'{"step": 2, "loss": \xff\xfe}', "not UTF-8 text"),
        (b'{"step": 2, "lo', "invalid JSON"),
    ],
)
def test_a_corrupt_line_before_the_last_is_one_line_naming_it(cli, tmp_path, line, problem):
    make_run(cli.home, "a", "ar", GOOD + line + b"\n" + GOOD.replace(b"1", b"3"))
    message = one_line_error(cli("plot", "a", "--out", str(tmp_path / "a.png")), 1)
    assert message.startswith(f"a/metrics.jsonl line 2: {problem}")
    assert not (tmp_path / "a.png").exists()


# ---------------------------------------------------------------------------------------------
# the sampling trace


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


def test_plot_trace_options_and_bad_paths_are_one_line(cli, tmp_path):
    path = tmp_path / "t.jsonl"
    trace = synthetic_trace()
    path.write_text("".join(json.dumps(r) + "\n" for r in [trace.header, *trace.events]))
    assert read_trace(path).header == trace.header
    png = cli.ok("plot", "--trace", str(path), "--prompts", "2", "--out", str(tmp_path)).stdout.strip()
    assert png == str(tmp_path / "t.png") and Path(png).read_bytes()[:8] == PNG
    assert "--prompts 3: the trace has prompts 1-2" in one_line_error(
        cli("plot", "--trace", str(path), "--prompts", "3", "--out", str(tmp_path / "u.png")), 2
    )
    assert "cannot write .txt" in one_line_error(cli("plot", "--trace", str(path), "--out", "x.txt"), 2)
    assert "is a folder" in one_line_error(cli("plot", "--trace", str(tmp_path)), 2)
    assert not (tmp_path / "u.png").exists() and not Path("x.txt").exists()


def test_sample_trace_into_a_folder_is_refused_before_loading_anything(cli, tmp_path):
    message = one_line_error(cli("sample", "any-run", "--prompt", "Hi", "--trace", str(tmp_path)), 2)
    assert message == f"--trace {tmp_path} is a folder; give a file, e.g. {tmp_path / 'trace.jsonl'}"
