"""bench/quality.py end to end at a toy size: its JSON document, its PNG, and reuse of trained runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOY = "--preset tiny --hidden-size 32 --num-hidden-layers 1 --num-attention-heads 2"
TOY += " --seq-len 128 --vocab-size 300"


def run_bench(home: Path) -> tuple[dict, str]:
    command = [sys.executable, str(ROOT / "bench" / "quality.py"), "--home", str(home), "--json"]
    command += ["--pretrain-steps", "4", "--sft-steps", "2", "--curve-points", "2", "--size", TOY]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(result.stdout), result.stderr


def test_quality_bench_reports_three_arms_and_reuses_its_runs(tmp_path: Path) -> None:
    document, log = run_bench(tmp_path)
    arms = document["arms"]
    assert [(a["arm"], a["kind"]) for a in arms] == [
        ("ar", "ar"),
        ("diffusion-from-ar", "diffusion"),
        ("diffusion-scratch", "diffusion"),
    ]
    for arm in arms:
        assert all(0.0 <= arm[s] <= 1.0 for s in ("seen", "forward", "reverse"))
        assert arm["tokens"] > 0 and arm["seconds"] > 0 and arm["perplexity"] > 1
        assert arm["perplexity_is_bound"] is (arm["kind"] == "diffusion")
        assert [p["tokens"] for p in arm["curve"]] == sorted(p["tokens"] for p in arm["curve"])
        assert arm["curve"][-1]["tokens"] == arm["tokens"] and len(arm["curve"]) == 2
    # matched tokens: the same steps and batch for every arm (diffusion cuts a few batches short)
    tokens = [a["tokens"] for a in arms]
    assert max(tokens) <= 1.1 * min(tokens)
    assert Path(document["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ar-base: training" in log
    again, log = run_bench(tmp_path)
    assert "training" not in log and log.count("reused") >= 4
    assert [a["seconds"] for a in again["arms"]] == [a["seconds"] for a in arms]
