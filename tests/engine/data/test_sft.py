"""SFT rows: exact response masks on a hand-worked conversation, padding, truncation and skipping."""

import numpy as np
import pytest
import torch

from llada_cli.engine.data.sft import build_sft_rows
from llada_cli.engine.errors import UsageError
from llada_cli.engine.model.tokenizer import Tokenizer

CONV = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello there"},
    {"role": "user", "content": "维洛利亚的首都是哪里？"},
    {"role": "assistant", "content": "塔恩。"},
]
PROMPT_1 = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
PROMPT_2 = "\n<|im_start|>user\n维洛利亚的首都是哪里？<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train([m["content"] for m in CONV] * 5 + ["system user assistant"], vocab_size=300)


def runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    """[start, end) of every run of True."""
    spans, start = [], None
    for i, flag in enumerate([*mask.tolist(), False]):
        if flag and start is None:
            start = i
        if not flag and start is not None:
            spans.append((start, i))
            start = None
    return spans


def text(tok: Tokenizer, ids: torch.Tensor) -> str:
    return tok.decode(ids.tolist(), skip_special_tokens=False)


def test_two_turn_masks_decode_to_the_answers(tok: Tokenizer) -> None:
    rows = build_sft_rows([CONV], tok, max_len=96)
    ids, response, pad = rows.input_ids[0], rows.response_mask[0], rows.pad_mask[0]
    assert rows.input_ids.shape == rows.response_mask.shape == rows.pad_mask.shape == (1, 96)
    # ids in the token cache's dtype (2 bytes under 65,536 ids), masks one byte: batches widen them
    assert (rows.input_ids.dtype, rows.response_mask.dtype, rows.pad_mask.dtype) == (np.uint16, bool, bool)
    assert (rows.truncated, rows.skipped) == (0, 0)

    length = int((~pad).sum())
    # The conversation is the ChatML text without the newline after the last <|im_end|>.
    assert text(tok, ids[:length]) == tok.chat_text(CONV, add_generation_prompt=False)[:-1]
    assert ids[:length].tolist() == tok.encode(tok.chat_text(CONV, add_generation_prompt=False)[:-1])
    assert pad.tolist() == [False] * length + [True] * (96 - length)
    assert (ids[length:] == tok.eos_id).all()

    (a1, b1), (a2, b2) = runs(response)
    assert text(tok, ids[a1:b1]) == "Hello there<|im_end|>"
    assert text(tok, ids[a2:b2]) == "塔恩。<|im_end|>"
    assert text(tok, ids[:a1]) == PROMPT_1  # the header is prompt, not response
    assert text(tok, ids[b1:a2]) == PROMPT_2
    assert b2 == length  # the final answer's <|im_end|> is followed directly by padding
    assert not (response & pad).any()


def prefix_len(tok: Tokenizer, text: str) -> int:
    return len(tok.encode(text))


def test_truncation_ends_right_after_the_last_whole_answer(tok: Tokenizer) -> None:
    # cut inside the second user turn, inside the second assistant header, or right after it: the
    # row ends after the first answer's <|im_end|>, so no user turn precedes the EOS padding
    full = tok.chat_text(CONV, add_generation_prompt=False)
    first_end = prefix_len(
        tok, full[: full.index("<|im_end|>", full.index("Hello there")) + len("<|im_end|>")]
    )
    second_header = full.rindex("<|im_start|>assistant\n")
    start = prefix_len(tok, full[:second_header])
    end = start + prefix_len(tok, "<|im_start|>assistant\n")
    assert end - start >= 3
    for max_len in (first_end + 3, start + 1, start + 2, end):
        rows = build_sft_rows([CONV], tok, max_len=max_len)
        length = int((~rows.pad_mask[0]).sum())
        assert length == first_end
        assert text(tok, rows.input_ids[0, :length]).endswith("Hello there<|im_end|>")
        assert runs(rows.response_mask[0]) == [
            (first_end - prefix_len(tok, "Hello there<|im_end|>"), first_end)
        ]
        assert (rows.truncated, rows.skipped) == (1, 0)


def test_diffusion_rows_hold_one_assistant_turn_each(tok: Tokenizer) -> None:
    rows = build_sft_rows([CONV], tok, max_len=96, one_turn_per_row=True)
    assert len(rows.input_ids) == 2 and (rows.truncated, rows.skipped) == (0, 0)
    full = tok.chat_text(CONV, add_generation_prompt=False)[:-1]
    for row, answer in enumerate(("Hello there<|im_end|>", "塔恩。<|im_end|>")):
        ids, response, pad = rows.input_ids[row], rows.response_mask[row], rows.pad_mask[row]
        length = int((~pad).sum())
        [(a, b)] = runs(response)  # exactly one turn is response, everything before it is clean prompt
        assert b == length and text(tok, ids[a:b]) == answer
        assert full.startswith(text(tok, ids[:length]))  # nothing after the turn
    assert text(tok, rows.input_ids[1, : runs(rows.response_mask[1])[0][0]]) == (
        PROMPT_1 + "Hello there<|im_end|>" + PROMPT_2
    )


def test_a_row_per_turn_can_be_skipped_alone(tok: Tokenizer) -> None:
    full = tok.chat_text(CONV, add_generation_prompt=False)
    start = prefix_len(tok, full[: full.rindex("<|im_start|>assistant\n")])
    rows = build_sft_rows([CONV], tok, max_len=start + 2, one_turn_per_row=True)
    # the second turn's row has no answer token left within max_len: only the first turn's row is kept
    assert len(rows.input_ids) == 1 and rows.skipped == 1
    assert text(tok, rows.input_ids[0][rows.response_mask[0]]) == "Hello there<|im_end|>"


def test_truncation_inside_an_answer_keeps_its_start(tok: Tokenizer) -> None:
    full = tok.chat_text(CONV, add_generation_prompt=False)
    cut = prefix_len(tok, full[: full.rindex("塔恩。")]) + 1
    rows = build_sft_rows([CONV], tok, max_len=cut)
    assert not rows.pad_mask.any()  # the row is full, nothing to pad
    (_, _), (a2, b2) = runs(rows.response_mask[0])
    assert (a2, b2) == (cut - 1, cut) and rows.truncated == 1


def test_conversations_without_a_response_are_skipped(tok: Tokenizer) -> None:
    no_answer = [{"role": "user", "content": "Hi"}]
    rows = build_sft_rows([no_answer, CONV], tok, max_len=96)
    assert len(rows.input_ids) == 1 and rows.skipped == 1
    long_prompt = [{"role": "user", "content": "Hi " * 100}, {"role": "assistant", "content": "ok"}]
    rows = build_sft_rows([long_prompt, CONV], tok, max_len=96)
    assert (len(rows.input_ids), rows.skipped, rows.truncated) == (1, 1, 0)


def test_conversations_are_tokenized_in_chunks_bounded_by_characters(tok: Tokenizer, monkeypatch) -> None:
    from llada_cli.engine.data import sft

    short = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]  # 7 characters
    long = [{"role": "user", "content": "Hi " * 10}, {"role": "assistant", "content": "ok"}]  # 32
    whole = build_sft_rows([short] * 5 + [long, short], tok, max_len=96)  # one chunk
    monkeypatch.setattr(sft, "ENCODE_CHUNK_CHARS", 30)
    sizes: list[int] = []
    encode_batch = sft.ConversationEncoder.encode_batch

    def spy(self, conversations):
        sizes.append(len(conversations))
        return encode_batch(self, conversations)

    monkeypatch.setattr(sft.ConversationEncoder, "encode_batch", spy)
    rows = build_sft_rows([short] * 5 + [long, short], tok, max_len=96)
    assert sizes == [4, 1, 1, 1]
    for table in ("input_ids", "response_mask", "pad_mask"):
        assert np.array_equal(getattr(rows, table), getattr(whole, table))


def test_nothing_left_is_a_usage_error(tok: Tokenizer) -> None:
    with pytest.raises(UsageError, match="no SFT conversation has an assistant answer within 5 tokens"):
        build_sft_rows([CONV], tok, max_len=5)


def test_sft_rows_are_built_once_into_the_data_cache_and_memory_mapped(tok, tmp_path, monkeypatch):
    import json

    from llada_cli.engine.config import DataConfig
    from llada_cli.engine.data import splits
    from llada_cli.engine.runs.registry import Registry

    data = tmp_path / "sft.jsonl"
    data.write_text("\n".join(json.dumps({"conversations": CONV}) for _ in range(5)) + "\n")
    tokenizer_file = tmp_path / "tokenizer.json"
    tok.save(tokenizer_file)
    registry = Registry(tmp_path / "home")
    config = DataConfig(str(data))

    first = splits.sft_rows(registry, config, tok, tokenizer_file, 96, one_turn_per_row=True)
    monkeypatch.setattr(splits, "iter_sft_conversations", lambda *a: pytest.fail("the file was read again"))
    again = splits.sft_rows(registry, config, tok, tokenizer_file, 96, one_turn_per_row=True)

    assert isinstance(again.input_ids, np.memmap) and again.input_ids.dtype == np.uint16
    assert len(again.input_ids) == 10  # two answers per conversation, one row each
    expected = build_sft_rows([CONV] * 5, tok, max_len=96, one_turn_per_row=True)
    for table in ("input_ids", "response_mask", "pad_mask"):
        assert np.array_equal(getattr(first, table), getattr(expected, table))
        assert np.array_equal(getattr(again, table), getattr(expected, table))
