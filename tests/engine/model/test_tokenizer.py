"""Tokenizer: training, special tokens, the mask token, ChatML, and loading MiniMind's format."""

import json
from pathlib import Path

import pytest
from tokenizers import pre_tokenizers

from llada_cli.engine.data.builtin import builtin_corpus
from llada_cli.engine.errors import UsageError
from llada_cli.engine.model.tokenizer import EOS, IM_END, IM_START, MASK, Tokenizer

TEXTS = [
    "The capital of Veloria is Tarn. Mila Kedon works as a baker.",
    "维洛利亚的首都是塔恩。米拉·克东是一名面包师。",
    "Hello world, hello tokenizer!  Two spaces and a tab\there.",
] * 20


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train(TEXTS, vocab_size=400)


def minimind_style_json(drop: str | None = None) -> dict:
    """A tokenizer.json laid out like MiniMind's: specials 0-2, byte-level BPE, specials in the vocab."""
    specials = [t for t in (EOS, IM_START, IM_END) if t != drop]
    vocab = {token: i for i, token in enumerate(specials)}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    vocab["ä¸"] = len(vocab)  # one merge, as in the real file ("ä" + "¸" starts many CJK characters)
    flags = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    added = [{"id": i, "content": t, **flags} for i, t in enumerate(specials)]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    model = dict.fromkeys(["dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix"])
    model |= {"type": "BPE", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False}
    model |= {"vocab": vocab, "merges": [["ä", "¸"]]}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": {**byte_level, "add_prefix_space": True},
        "model": model,
    }


def test_train_puts_specials_first_and_has_no_mask(tok: Tokenizer) -> None:
    assert (tok.eos_id, tok.im_start_id, tok.im_end_id) == (0, 1, 2)
    assert tok.mask_id is None
    assert 256 + 3 < tok.vocab_size <= 400


@pytest.mark.parametrize(
    "text",
    [
        "The capital of Veloria is Tarn.",
        "维洛利亚的首都是塔恩。",
        "  leading spaces\n\nand newlines ",
        "emoji 🙂 ok",
    ],
)
def test_encode_decode_round_trip(tok: Tokenizer, text: str) -> None:
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.encode_batch([text, text]) == [ids, ids]


def test_special_token_strings_inside_text_become_their_ids(tok: Tokenizer) -> None:
    ids = tok.encode(f"{IM_START}user\nhi{IM_END}{EOS}")
    assert ids[0] == 1 and ids[-2:] == [2, 0]
    assert tok.decode(ids) == "user\nhi"  # specials skipped by default
    assert tok.decode(ids, skip_special_tokens=False) == f"{IM_START}user\nhi{IM_END}{EOS}"
    assert 0 not in tok.encode("plain text")  # nothing is added automatically


def test_with_mask_token_appends_one_special(tok: Tokenizer) -> None:
    masked = tok.with_mask_token()
    assert masked.mask_id == tok.vocab_size
    assert masked.vocab_size == tok.vocab_size + 1
    assert tok.mask_id is None  # the original is untouched
    assert masked.encode(f"a{MASK}b") == tok.encode("a") + [masked.mask_id] + tok.encode("b")
    assert masked.decode([masked.mask_id]) == ""
    assert masked.with_mask_token() is masked


def test_save_is_atomic_and_load_round_trips(tok: Tokenizer, tmp_path: Path) -> None:
    masked = tok.with_mask_token()
    path = tmp_path / "run" / "tokenizer.json"
    masked.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]  # no temp file left behind
    loaded = Tokenizer.load(path)
    assert loaded.mask_id == masked.mask_id and loaded.vocab_size == masked.vocab_size
    assert loaded.encode(TEXTS[1]) == masked.encode(TEXTS[1])


def test_minimind_layout_loads(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(minimind_style_json(), ensure_ascii=False), encoding="utf-8")
    tok = Tokenizer.load(path)
    assert (tok.eos_id, tok.im_start_id, tok.im_end_id, tok.mask_id) == (0, 1, 2, None)
    assert tok.vocab_size == 3 + 256 + 1
    assert tok.decode(tok.encode("你好, world")) == "你好, world"
    assert tok.with_mask_token().mask_id == 260


def test_load_errors_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="tokenizer file not found: .*nope.json"):
        Tokenizer.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="cannot read tokenizer .*bad.json"):
        Tokenizer.load(bad)
    lacking = tmp_path / "lacking.json"
    lacking.write_text(json.dumps(minimind_style_json(drop=IM_END)))
    with pytest.raises(UsageError, match=r"no special token <\|im_end\|>"):
        Tokenizer.load(lacking)


def test_train_rejects_a_vocab_that_cannot_hold_the_bytes() -> None:
    with pytest.raises(UsageError, match="vocab size 100 is too small; use at least 259"):
        Tokenizer.train(TEXTS, vocab_size=100)


def test_chat_text_is_chatml(tok: Tokenizer) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "Hi."},
    ]
    expected = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n"
    assert tok.chat_text(messages[:2], add_generation_prompt=False) == expected
    assert tok.chat_text(messages[:2], add_generation_prompt=True) == expected + "<|im_start|>assistant\n"
    assert tok.chat_text(messages, add_generation_prompt=False).endswith(
        "<|im_start|>assistant\nHi.<|im_end|>\n"
    )


def test_cjk_characters_are_never_merged(tok: Tokenizer) -> None:
    ids = tok.encode("维洛利亚的首都是塔恩。")
    assert [tok.decode([i]) for i in ids] == list("维洛利亚的首都是塔恩。")


def test_builtin_chinese_facts_are_not_single_tokens() -> None:
    # ByteLevel BPE alone learned a token per Chinese fact on this corpus ('戈贝尼亚的首都是维妮' was
    # one id), so a question and its answer shared no token and SFT taught "reply with one id".
    corpus = builtin_corpus()
    tokenizer = Tokenizer.train(corpus.documents, vocab_size=2048)
    chinese = [q for q in corpus.questions if q.lang == "zh"]
    assert len(chinese) == 48  # 16 per set
    for question in chinese:
        answer_ids = tokenizer.encode(question.answer)
        assert len(answer_ids) > 1, question.answer
        # the question's subject or object name reads with the same ids in the answer
        pieces = [tokenizer.decode([i]) for i in answer_ids]
        assert "".join(pieces) == question.answer
        assert all(len(piece) == 1 for piece in pieces if any("\u4e00" <= c <= "\u9fff" for c in piece))
    english = max((len(tokenizer.decode([i])) for i in range(tokenizer.vocab_size)), default=0)
    assert english > 1  # English words still merge
