"""Tokenizing a large pretraining jsonl: throughput and peak memory, streamed vs all at once, and
peak memory whatever the documents' length.

    python bench/data.py [--mb 1024] [--long 10] [--json] [--dir DIR]

Writes a MiniMind-shaped jsonl of about --mb megabytes ({"text": ...} rows of mixed Chinese and
English, 200-1500 characters), and a second one of the same size whose documents are --long
times longer; trains a 6400-token tokenizer on a 16 MB sample of the first, then runs, each in a
fresh process so that peak RSS is its own:
- llada: `tokenize_documents` streaming the file into the .npy token cache, on both files;
- llada, 4,096-document chunks: the same on the long documents with chunks cut by document count
  only (what llada did before chunks were bounded by their characters too);
- reference: `tokenizers` encoding every text in one `encode_batch` call after reading the whole
  file into a list (the plain way, and what llada did before streaming).
Prints MB/s of jsonl and the peak resident memory of each; llada's peak should not grow with the
documents' length.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

WORDS_EN = [
    "the",
    "model",
    "learns",
    "to",
    "denoise",
    "masked",
    "tokens",
    "while",
    "the",
    "capital",
    "city",
    "stays",
    "the",
    "same",
]
CHARS_ZH = "模型学习去噪被遮盖的词元首都城市保持不变语言扩散自回归训练数据"


def write_corpus(path: Path, megabytes: int, longer: int = 1) -> float:
    """About `megabytes` of rows whose documents are `longer` times the usual length; returns the
    mean document size in KB."""
    rng = random.Random(0)
    target, written, rows = megabytes << 20, 0, 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            if rng.random() < 0.5:
                text = " ".join(rng.choice(WORDS_EN) for _ in range(rng.randint(40, 250) * longer))
            else:
                text = "".join(rng.choice(CHARS_ZH) for _ in range(rng.randint(200, 1500) * longer))
            line = json.dumps({"text": text}, ensure_ascii=False) + "\n"
            handle.write(line)
            written += len(line.encode("utf-8"))
            rows += 1
    return written / rows / 1024


LLADA = """
import sys, time, resource
from pathlib import Path
from llada_cli.engine.data import tokens
from llada_cli.engine.data.sources import iter_jsonl_texts
from llada_cli.engine.data.tokens import tokenize_documents
from llada_cli.engine.model.tokenizer import Tokenizer
if sys.argv[4:] == ["documents"]:  # chunks of 4,096 documents, however long
    tokens.ENCODE_CHUNK_CHARS = 1 << 62
tokenizer = Tokenizer.load(Path(sys.argv[2]))
start = time.perf_counter()
stream = tokenize_documents(iter_jsonl_texts(Path(sys.argv[1])), tokenizer, Path(sys.argv[3]))
print(time.perf_counter() - start, len(stream), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
REFERENCE = """
import json, sys, time, resource
import tokenizers
tokenizer = tokenizers.Tokenizer.from_file(sys.argv[2])
start = time.perf_counter()
texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8")]
encodings = tokenizer.encode_batch(texts)
count = sum(len(e.ids) + 1 for e in encodings)
print(time.perf_counter() - start, count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run(script: str, *args: str) -> tuple[float, int, float]:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
    seconds, tokens, rss_kb = out.stdout.split()
    return float(seconds), int(tokens), int(rss_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024, help="Size of each generated jsonl.")
    parser.add_argument("--long", type=int, default=10, help="How many times longer the long documents are.")
    parser.add_argument("--dir", type=Path, default=None, help="Where to write it (default: a temp dir).")
    parser.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    args = parser.parse_args()
    from llada_cli.engine.data.sources import tokenizer_sample
    from llada_cli.engine.model.tokenizer import Tokenizer

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        root = Path(folder)
        corpus, long_corpus = root / "pretrain.jsonl", root / "long.jsonl"
        tokenizer_file = root / "tokenizer.json"
        doc_kb = write_corpus(corpus, args.mb)
        long_kb = write_corpus(long_corpus, args.mb, args.long)
        size_mb = corpus.stat().st_size / 2**20
        Tokenizer.train(tokenizer_sample(str(corpus), root, "text", 16 << 20), 6400).save(tokenizer_file)
        rows = {}
        for name, script, data, extra in (
            (f"llada, {doc_kb:.1f} KB docs", LLADA, corpus, [str(root / "a.npy")]),
            (f"llada, {long_kb:.1f} KB docs", LLADA, long_corpus, [str(root / "b.npy")]),
            (f"4,096-doc chunks, {long_kb:.1f} KB", LLADA, long_corpus, [str(root / "c.npy"), "documents"]),
            (f"reference, {doc_kb:.1f} KB docs", REFERENCE, corpus, []),
        ):
            seconds, tokens, rss = run(script, str(data), str(tokenizer_file), *extra)
            rows[name] = {
                "seconds": round(seconds, 1),
                "tokens": tokens,
                "mb_per_s": round(data.stat().st_size / 2**20 / seconds, 2),
                "peak_rss_mb": round(rss),
            }
    llada, reference = rows[f"llada, {doc_kb:.1f} KB docs"], rows[f"reference, {doc_kb:.1f} KB docs"]
    result = {
        "jsonl_mb": round(size_mb),
        "rows": rows,
        "ratio": round(reference["mb_per_s"] / llada["mb_per_s"], 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"two jsonl files of {size_mb:.0f} MB each, tokenizer 6400")
    print(f"{'':<28} {'seconds':>8} {'MB/s':>6} {'tokens':>12} {'peak RSS MB':>12}")
    for name, row in rows.items():
        figures = f"{row['seconds']:>8} {row['mb_per_s']:>6} {row['tokens']:>12,} {row['peak_rss_mb']:>12,}"
        print(f"{name:<28} {figures}")
    print(f"reference / llada throughput: {result['ratio']}x")


if __name__ == "__main__":
    main()
