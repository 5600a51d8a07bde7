"""Tokenizing a large pretraining jsonl: throughput and peak memory, streamed vs all at once.

    python bench/data.py [--mb 1024] [--json] [--dir DIR]

Writes a MiniMind-shaped jsonl of about --mb megabytes ({"text": ...} rows of mixed Chinese and
English, 200-1500 characters), trains a 6400-token tokenizer on a 16 MB sample of it, then runs,
each in a fresh process so that peak RSS is its own:
- llada: `tokenize_documents` streaming the file into the .npy token cache;
- reference: `tokenizers` encoding every text in one `encode_batch` call after reading the whole
  file into a list (the plain way, and what llada did before).
Prints MB/s of jsonl and the peak resident memory of each.
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


def write_corpus(path: Path, megabytes: int) -> None:
    rng = random.Random(0)
    target, written = megabytes << 20, 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            if rng.random() < 0.5:
                text = " ".join(rng.choice(WORDS_EN) for _ in range(rng.randint(40, 250)))
            else:
                text = "".join(rng.choice(CHARS_ZH) for _ in range(rng.randint(200, 1500)))
            line = json.dumps({"text": text}, ensure_ascii=False) + "\n"
            handle.write(line)
            written += len(line.encode("utf-8"))


LLADA = """
import sys, time, resource
from pathlib import Path
from llada_cli.engine.data.sources import iter_jsonl_texts
from llada_cli.engine.data.tokens import tokenize_documents
from llada_cli.engine.model.tokenizer import Tokenizer
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
    parser.add_argument("--mb", type=int, default=1024, help="Size of the generated jsonl.")
    parser.add_argument("--dir", type=Path, default=None, help="Where to write it (default: a temp dir).")
    parser.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    args = parser.parse_args()
    from llada_cli.engine.data.sources import tokenizer_sample
    from llada_cli.engine.model.tokenizer import Tokenizer

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        root = Path(folder)
        corpus, tokenizer_file = root / "pretrain.jsonl", root / "tokenizer.json"
        write_corpus(corpus, args.mb)
        size_mb = corpus.stat().st_size / 2**20
        Tokenizer.train(tokenizer_sample(str(corpus), root, "text", 16 << 20), 6400).save(tokenizer_file)
        rows = {}
        for name, script, extra in (
            ("llada (streamed)", LLADA, [str(root / "cache.npy")]),
            ("reference", REFERENCE, []),
        ):
            seconds, tokens, rss = run(script, str(corpus), str(tokenizer_file), *extra)
            rows[name] = {
                "seconds": round(seconds, 1),
                "tokens": tokens,
                "mb_per_s": round(size_mb / seconds, 2),
                "peak_rss_mb": round(rss),
            }
    result = {
        "jsonl_mb": round(size_mb),
        "rows": rows,
        "ratio": round(rows["reference"]["mb_per_s"] / rows["llada (streamed)"]["mb_per_s"], 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"jsonl {size_mb:.0f} MB, tokenizer 6400")
    print(f"{'':<18} {'seconds':>8} {'MB/s':>6} {'tokens':>12} {'peak RSS MB':>12}")
    for name, row in rows.items():
        figures = f"{row['seconds']:>8} {row['mb_per_s']:>6} {row['tokens']:>12,} {row['peak_rss_mb']:>12,}"
        print(f"{name:<18} {figures}")
    print(f"reference / llada throughput: {result['ratio']}x")


if __name__ == "__main__":
    main()
