"""bench/sft_padding.py: the padding's share of diffusion SFT per pad policy, on a few batches."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_capped_padding_trains_less_eos_than_llada_and_ignore_none() -> None:
    command = [sys.executable, str(ROOT / "bench" / "sft_padding.py"), "--batches", "20", "--json"]
    report = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    by_policy = {r["policy"]: r for r in report["results"]}
    assert set(by_policy) == {"capped", "eos", "ignore"}
    assert by_policy["ignore"]["eos_token_share"] == by_policy["ignore"]["eos_weight_share"] == 0
    assert by_policy["ignore"]["answer_weight_per_row"] == 1
    eos, capped = by_policy["eos"], by_policy["capped"]
    assert eos["eos_token_share"] > 0.5  # LLaDA's formula: padding is most of what is trained
    assert capped["eos_token_share"] == eos["eos_token_share"]  # the same positions are masked...
    assert capped["eos_weight_share"] < 0.5 < eos["eos_weight_share"]  # ...but weigh less than the answer
    assert capped["answer_weight_per_row"] > 0.5 > eos["answer_weight_per_row"]
