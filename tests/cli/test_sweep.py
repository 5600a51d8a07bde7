"""`llada sweep` from the command line: every setting printed, the front drawn, AR runs refused."""

from __future__ import annotations

import json


def test_sweep_from_the_cli_prints_every_setting_and_draws_the_front(pipeline, tmp_path):
    png = tmp_path / "sweep.png"
    result = pipeline.ok(
        "sweep", "dlm-chat", "--limit", "4", "--batch-size", "2", "--out", str(png), "--json"
    )
    report = json.loads(result.stdout)
    labels = [p["label"] for p in report["points"]]
    assert labels[0] == "exact" and "threshold 0.9" in labels and "quality mode (editing)" in labels
    assert report["points"][0]["agreement"] == 1.0 and any(p["pareto"] for p in report["points"])
    # the micro model is barely trained: near-equal confidences may rank differently once padded
    assert report["questions"] == 4 and set(report["batch_differences"]) <= {0, 1, 2, 3}
    assert png.stat().st_size > 10_000
    refused = pipeline("sweep", "ar-chat", "--limit", "1", "--out", str(png))
    assert refused.exit_code == 2 and "ar-chat@" in refused.stderr and "is an AR run" in refused.stderr
