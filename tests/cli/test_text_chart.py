"""`llada plot --text` (cli/text_chart.py): one y scale shared across runs."""

from __future__ import annotations

from llada_cli.cli.text_chart import GUTTER
from tests.cli.test_plot import make_run


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
