"""Token streams: layout (documents + EOS), dtype, and the on-disk cache."""

from pathlib import Path

import numpy as np
import pytest

from llada_cli.engine.data.tokens import cache_key, stream_dtype, tokenize_documents
from llada_cli.engine.errors import LladaError
from llada_cli.engine.model.tokenizer import Tokenizer

DOCS = ["The capital of Veloria is Tarn.", "维洛利亚的首都是塔恩。", "x"]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train(DOCS * 10, vocab_size=300)


def test_stream_is_each_document_then_eos(tok: Tokenizer) -> None:
    stream = tokenize_documents(DOCS, tok, cache_path=None)
    expected = [i for doc in DOCS for i in [*tok.encode(doc), tok.eos_id]]
    assert stream.tolist() == expected
    assert stream.dtype == np.uint16 and stream.ndim == 1
    assert tokenize_documents([], tok, None).tolist() == []


def test_dtype_widens_for_large_vocabularies() -> None:
    assert stream_dtype(6400) == np.uint16
    assert stream_dtype(65535) == np.uint16
    assert stream_dtype(65536) == np.uint32


def test_cache_is_written_atomically_and_reused(tok: Tokenizer, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "cache" / "tokens.npy"
    first = tokenize_documents(DOCS, tok, path)
    assert [p.name for p in path.parent.iterdir()] == ["tokens.npy"]

    def fail(*args: object) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(Tokenizer, "encode_batch", fail)
    again = tokenize_documents(DOCS, tok, path)
    assert isinstance(again, np.memmap)  # read from disk, not recomputed
    assert again.tolist() == first.tolist() and again.dtype == first.dtype


def test_corrupt_cache_is_a_clear_error(tok: Tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "tokens.npy"
    path.write_bytes(b"not a numpy file")
    with pytest.raises(LladaError, match="token cache .* delete it and rerun"):
        tokenize_documents(DOCS, tok, path)


def test_cache_key_is_short_stable_and_unambiguous() -> None:
    key = cache_key("builtin-v1", "abc")
    assert key == cache_key("builtin-v1", "abc") and len(key) == 16
    assert int(key, 16) >= 0
    assert cache_key("ab", "c") != cache_key("a", "bc")


def test_the_cache_is_written_in_chunks(tok: Tokenizer, tmp_path: Path, monkeypatch) -> None:
    """Memory bounded by a chunk: the stream reaches the file before the corpus is read to the end."""
    monkeypatch.setattr("llada_cli.engine.data.tokens.ENCODE_CHUNK", 2)
    seen = []

    def documents():
        for doc in DOCS * 3:
            seen.append(doc)
            yield doc

    path = tmp_path / "tokens.npy"
    stream = tokenize_documents(documents(), tok, path)
    assert len(seen) == 9 and isinstance(stream, np.memmap)
    assert stream.tolist() == tokenize_documents(DOCS * 3, tok, None).tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.npy"]  # no temporary file left


def test_chunks_are_bounded_by_characters_whatever_the_documents_length(tok: Tokenizer, monkeypatch) -> None:
    """A few long documents make a chunk as a great many short ones do: memory follows the text."""
    monkeypatch.setattr("llada_cli.engine.data.tokens.ENCODE_CHUNK_CHARS", 100)
    calls: list[list[str]] = []
    encode_batch = Tokenizer.encode_batch

    def spy(self: Tokenizer, texts: list[str]) -> list[list[int]]:
        calls.append(texts)
        return encode_batch(self, texts)

    monkeypatch.setattr(Tokenizer, "encode_batch", spy)
    documents = ["x" * 40] * 5 + ["y" * 250] + ["z" * 10] * 3
    stream = tokenize_documents(documents, tok, None)
    assert [[len(text) for text in chunk] for chunk in calls] == [[40, 40], [40, 40], [40], [250], [10] * 3]
    expected = [i for doc in documents for i in [*tok.encode(doc), tok.eos_id]]
    assert stream.tolist() == expected
