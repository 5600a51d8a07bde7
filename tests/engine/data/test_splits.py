"""A stage's rows (data/splits.py): the SFT data summary says which conversations were skipped and why."""

from __future__ import annotations

import json

import pytest

from llada_cli.engine.config import DataConfig
from llada_cli.engine.data import splits
from llada_cli.engine.model.tokenizer import Tokenizer
from llada_cli.engine.runs.registry import Registry

GOOD = [{"role": "user", "content": "Which city?"}, {"role": "assistant", "content": "Tidar."}]
NO_ANSWER = [{"role": "user", "content": "Which city?"}]
EMPTY = [{"role": "user", "content": ""}, {"role": "assistant", "content": "Tidar."}]


def test_the_sft_summary_counts_the_conversations_skipped_by_reason(tmp_path, monkeypatch):
    data = tmp_path / "sft.jsonl"
    conversations = [GOOD] * 6 + [NO_ANSWER, NO_ANSWER, EMPTY]
    data.write_text("".join(json.dumps({"conversations": c}) + "\n" for c in conversations))
    tok = Tokenizer.train(["Which city? Tidar. system user assistant"] * 5, vocab_size=300)
    tokenizer_file = tmp_path / "tokenizer.json"
    tok.save(tokenizer_file)
    registry, config = Registry(tmp_path / "home"), DataConfig(str(data), val_fraction=0.2)

    def stage() -> splits.StageData:
        return splits.stage_data(registry, "ar", "sft", config, tok, tokenizer_file, 64, 2, 1, seed=0)

    summary = stage().summary
    assert (summary["rows"] + summary["val_rows"], summary["conversations"]) == (6, 9)
    assert (summary["skipped_no_answer"], summary["skipped_empty"]) == (2, 1)
    monkeypatch.setattr(splits, "iter_sft_conversations", lambda *a: pytest.fail("the file was read again"))
    assert stage().summary == summary  # kept with the cached rows
