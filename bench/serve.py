"""`llada serve`'s dynamic batching: 8 concurrent clients against one server, beside the same 8
requests sent one after another, for each track.

    python bench/serve.py [--clients 8] [--max-tokens 32] [--dtype auto] [--home DIR] [--fresh] [--json]

The quick start's chat models of seed 0 (examples/quickstart.toml, trained here if missing) are
served in this process (server/app.py on uvicorn, a free port on localhost) and asked the first
`--clients` forward questions of the builtin benchmark through the official `openai` client, at
temperature 0 with `--max-tokens` tokens (AR) or slots (diffusion): first one at a time, then all
at once from as many threads. Printed per track: total completion tokens per second both ways,
their ratio, the batch sizes the server decoded, and whether every answer is the same both ways;
and, as the plain reference, the sampler alone in this process: the same questions one at a time
against one batch (`api.Model.generate`), the most batching can give on this machine.
`--json` prints {"rows": [{"track", "sequential_tokens_per_s", "concurrent_tokens_per_s", "speedup",
"in_process_batch_speedup", "batches", "identical"}], "clients", "max_tokens"}. Needs the serve
extra and `openai`.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import uvicorn
from quality import Bench, log
from recipe import CHATS, RECIPE, bench_parser, train_quick_start

from llada_cli import api
from llada_cli.cli.serve import bind
from llada_cli.engine.data.builtin import builtin_corpus
from llada_cli.server.app import create_app


def timed(ask, questions: list[str], clients: int) -> tuple[list, float]:
    """The replies to `questions`, with `clients` asking at once (1: one after another), and the wall time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        replies = list(pool.map(ask, questions))
    return replies, time.perf_counter() - started


def main() -> None:
    parser = bench_parser(__doc__, "post-training")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16"))
    args = parser.parse_args()
    bench = Bench(args)
    train_quick_start(bench, 0, RECIPE, "--dtype", args.dtype, "--batch-size", "16")
    models = {track: api.load(f"{chat}-s0", home=bench.home) for track, chat in CHATS.items()}
    app = create_app({m.name: m for m in models.values()}, max_batch=args.clients)
    listener = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1", api_key="-", max_retries=0
    )
    questions = [q.question for q in builtin_corpus().questions if q.split == "forward"][: args.clients]
    rows = []
    try:
        for track, model in models.items():

            def ask(question: str, name: str = model.name):
                messages = [{"role": "user", "content": question}]
                return client.chat.completions.create(
                    model=name, messages=messages, max_tokens=args.max_tokens, temperature=0
                )

            ask(questions[0])  # warm up: the first call pays for allocations
            started = time.perf_counter()
            for question in questions:  # the plain reference: the sampler alone, in this process
                model.generate(question, chat=True, max_new_tokens=args.max_tokens)
            direct_alone = time.perf_counter() - started
            started = time.perf_counter()
            model.generate(questions, chat=True, max_new_tokens=args.max_tokens)
            direct_batch = time.perf_counter() - started
            batcher = app.state.batchers[model.name]
            batcher.batches.clear()
            alone, alone_seconds = timed(ask, questions, 1)
            together, together_seconds = timed(ask, questions, args.clients)
            tokens = [sum(r.usage.completion_tokens for r in replies) for replies in (alone, together)]
            row = {
                "track": track,
                "sequential_tokens_per_s": tokens[0] / alone_seconds,
                "concurrent_tokens_per_s": tokens[1] / together_seconds,
                "batches": batcher.batches[len(questions) :],
                "identical": [r.choices[0].message.content for r in alone]
                == [r.choices[0].message.content for r in together],
            }
            row["speedup"] = row["concurrent_tokens_per_s"] / row["sequential_tokens_per_s"]
            row["in_process_batch_speedup"] = direct_alone / direct_batch
            log(f"{track}: {row}")
            rows.append(row)
    finally:
        server.should_exit = True
        thread.join()
    if args.json:
        print(json.dumps({"rows": rows, "clients": args.clients, "max_tokens": args.max_tokens}))
        return
    print(f"{args.clients} clients, {args.max_tokens} tokens each, temperature 0")
    print(
        f"{'track':10} {'one at a time':>14} {'concurrent':>12} {'speedup':>8}  {'in-process batch':>16}  "
        "batches  identical"
    )
    for row in rows:
        rates = f"{row['sequential_tokens_per_s']:>10.1f} t/s {row['concurrent_tokens_per_s']:>8.1f} t/s"
        direct = f"{row['in_process_batch_speedup']:>15.2f}x"
        shown = f"{row['speedup']:>7.2f}x  {direct}  {row['batches']}  {row['identical']}"
        print(f"{row['track']:10} {rates} {shown}")


if __name__ == "__main__":
    main()
