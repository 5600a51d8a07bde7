"""Infilling against the reversal curse: the builtin benchmark's reverse questions posed as fill-ins
of the sentence pretraining states, beside `sample`'s answers to the questions themselves.

    python bench/infill.py [--seeds 1] [--dtype auto] [--home DIR] [--fresh] [--json]

A reverse question asks a fact object first ("Tiren is the capital of which country?") when
pretraining only ever stated it subject first ("The capital of Mavoria is Tiren."). An AR model
cannot answer it (the reversal curse); a diffusion model can be asked to fill the subject into the
sentence it read: "The capital of[MASK:n] is Tiren.", n the subject's token count in that sentence
(an oracle length: the bench gives it; a user would try several). Per seed, the quick start's
diffusion base and chat models (examples/quickstart.toml) fill every reverse question's sentence
(`api.Model.infill`, the default threshold sampler, temperature 0), scored by the benchmark's exact
match of the filled sentence; the chat models also answer the reverse questions as `llada eval`
asks them. Accuracies are mean ± sample standard deviation over seeds, with the question count.
`--json` prints {"rows": [{"run": "dlm-base" | "dlm-chat" | "ar-chat", "how": "infill" | "sample",
"reverse", "std", "seeds", "questions"}], "bench_seconds"}. Not part of the test suite.
"""

from __future__ import annotations

import json
import re
import time

from quality import Bench, log, mean_std, pm
from recipe import RECIPE, bench_parser, benchmark, train_quick_start

from llada_cli import api
from llada_cli.engine.data.builtin import BenchmarkQuestion, answer_matches, builtin_corpus
from llada_cli.engine.data.builtin_words import RELATIONS


def fill_in(question: BenchmarkQuestion, model: api.Model) -> str:
    """The sentence pretraining states, its subject replaced by as many slots as its tokens there."""
    for relation in RELATIONS.values():
        statement = relation.statements[question.lang][0].rstrip(".。")
        pattern = (
            re.escape(statement)
            .replace(re.escape("{s}"), "(?P<s>.+?)")
            .replace(re.escape("{o}"), "(?P<o>.+)")
        )
        found = re.fullmatch(pattern, question.answer)
        if found is None or not relation.reverse:
            continue
        before, after = question.answer[: found.start("s")].rstrip(" "), question.answer[found.end("s") :]
        encode = model.tokenizer.encode
        slots = len(encode(question.answer[: found.end("s")])) - len(encode(before))
        end = "." if question.lang == "en" else "。"
        return f"{before}[MASK:{slots}]{after}{end}"
    raise ValueError(f"no statement template matches {question.answer!r}")


def main() -> None:
    parser = bench_parser(__doc__, "post-training")
    parser.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16"))
    args = parser.parse_args()
    started = time.perf_counter()
    bench = Bench(args)
    reverse = [q for q in builtin_corpus().questions if q.split == "reverse"]
    scores: dict[tuple[str, str], list[float]] = {}
    for seed in range(args.seeds):
        train_quick_start(bench, seed, RECIPE, "--dtype", args.dtype, "--batch-size", "16")
        for run in ("dlm-base", "dlm-chat"):
            model = api.load(f"{run}-s{seed}", home=bench.home)
            templates = [fill_in(q, model) for q in reverse]
            log(f"{run}-s{seed}: infill, e.g. {templates[0]!r}")
            results = model.infill(templates, seed=seed)
            right = [answer_matches(r.text, q.answer) for r, q in zip(results, reverse, strict=True)]
            scores.setdefault((run, "infill"), []).append(sum(right) / len(right))
        for run in ("dlm-chat", "ar-chat"):
            scores.setdefault((run, "sample"), []).append(benchmark(bench, f"{run}-s{seed}", seed)["reverse"])
    rows = []
    for (run, how), values in scores.items():
        mean, std = mean_std(values)
        rows.append(
            {
                "run": run,
                "how": how,
                "reverse": mean,
                "std": std,
                "seeds": len(values),
                "questions": len(reverse),
            }
        )
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps({"rows": rows, "bench_seconds": seconds}))
        return
    print(f"reverse questions ({len(reverse)}, both languages), {args.seeds} seed(s), dtype {args.dtype}")
    for row in rows:
        print(f"{row['run']:10} {row['how']:7} {pm(row['reverse'], row['std']):>12}")
    print(f"{seconds:.0f} s")


if __name__ == "__main__":
    main()
