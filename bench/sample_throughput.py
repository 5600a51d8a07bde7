"""Sampling throughput: the section 7 reference loop vs llada's samplers and AR, with benchmark accuracy.

    python bench/sample_throughput.py [--home DIR] [--skip-train] [--quick]

Trains (or reuses, in --home) a `tiny` AR model, a diffusion model continued from it, and an SFT of
each on the builtin corpus, through the CLI. Then, at gen length 128 and block 32, it times:
- the reference: docs/algorithms.md section 7 at temperature 0 in its most direct form (a full forward
  every step, float64 softmax confidence over the whole sequence, top-k commit);
- llada's diffusion sampler at the same settings (--exact), its default (threshold 0.9), then with a
  prefix cache and with a dual cache (threshold 0.9 for both);
- block-causal semi_ar_origin (the default for a run trained with the bdlm block curriculum) on
  `dlm-blocks`, a diffusion model continued from the AR one with the curriculum ending on blocks of
  32, without and with its exact cache; the two must give the same tokens (checked and printed);
- AR with its KV cache on the AR model of the same shape.
Every speed row decodes all 128 positions (no early stop, AR ignores its stop tokens), so
tokens/s = 128 * prompts / wall time, at batch 1 (prompts one by one) and batch 8 (all rows count).
Beside each setting: its exact-match accuracy on the builtin benchmark (seen / forward / reverse;
chat prompts, early stop on, as a user runs it) and how many answers equal the reference loop's, so speed
never hides a quality loss. The speed part is repeated at the `small` preset with random weights (pure
per-forward cost; random weights are never confident, so a threshold commits one token per step).
Peak MB: peak resident memory during one batch minus the resident memory before it, measured after
the timing with glibc unmapping freed blocks (else ru_maxrss growth; allocator peak on CUDA).
"""

from __future__ import annotations

import argparse
import ctypes
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from llada_cli import api
from llada_cli.engine.config import PRESETS
from llada_cli.engine.data.builtin import answer_matches, builtin_corpus
from llada_cli.engine.evaluation.evaluate import score_replies
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.runs.record import RunInfo
from llada_cli.engine.sampling.ar import ARSettings, generate_ar
from llada_cli.engine.sampling.diffusion import DiffusionSettings, generate_diffusion

GEN_LENGTH, BLOCK = 128, 32
SIZE = ["--preset", "tiny", "--vocab-size", "1024", "--seq-len", "256"]  # 256: prompt + 128 must fit
SMALL_VOCAB = 6400
DEFAULT_HOME = Path("/tmp/llada-bench-home")
PARENT = {
    "ar-base": None,
    "dlm-base": "ar-base",
    "dlm-blocks": "ar-base",
    "ar-chat": "ar-base",
    "dlm-chat": "dlm-base",
}
CHAT_RUNS = {"ar": "ar-chat", "diffusion": "dlm-chat"}
TRAIN = ["--batch-size", "16", "--overwrite"]
CURRICULUM = ["--use-block-curriculum", "--wsd-block-sizes-down", "64,32"]  # ends on blocks of 32
M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # reference | diffusion | ar
    options: dict = field(default_factory=dict)  # DiffusionSettings fields


REFERENCE = Setting("reference (section 7)", "reference")
BLOCK_CAUSAL = {"method": "semi_ar_origin", "attention": "block_causal", "threshold": 0.9}
SETTINGS = [
    REFERENCE,
    Setting("llada --exact", "diffusion", {"exact": True}),
    Setting("llada default (threshold 0.9)", "diffusion", {}),
    Setting("llada --threshold 0.9 --cache prefix", "diffusion", {"threshold": 0.9, "cache": "prefix"}),
    Setting("llada --threshold 0.9 --cache dual", "diffusion", {"threshold": 0.9, "cache": "dual"}),
    Setting("blocks: block-causal origin", "blocks", {**BLOCK_CAUSAL, "cache": "none"}),
    Setting("blocks: block-causal origin + cache", "blocks", {**BLOCK_CAUSAL, "cache": "prefix"}),
    Setting("AR + KV cache", "ar"),
]
QUICK = {s.name for s in SETTINGS} - {
    "llada --threshold 0.9 --cache prefix",
    "llada --threshold 0.9 --cache dual",
}


# ------------------------------------------------------------------------------- training


def run_names(pretrain_steps: int, sft_steps: int) -> dict[str, str]:
    base = f"p{pretrain_steps}"
    return {
        "ar-base": f"ar-base-{base}",
        "dlm-base": f"dlm-base-{base}",
        "dlm-blocks": f"dlm-blocks-{base}",
        "ar-chat": f"ar-chat-{base}-s{sft_steps}",
        "dlm-chat": f"dlm-chat-{base}-s{sft_steps}",
    }


def completed(home: Path, name: str) -> bool:
    info = home / "runs" / name / "run.json"
    return info.is_file() and RunInfo.load(info).status == "completed"


def llada(home: Path, *args: str) -> None:
    command = [sys.executable, "-m", "llada_cli", "--home", str(home), *args]
    print("$ llada " + " ".join(command[3:]), flush=True)
    code = subprocess.run(command, stdout=subprocess.DEVNULL).returncode
    if code:
        sys.exit(f"training failed (exit {code}) at: llada {' '.join(command[3:])}")


def train(home: Path, names: dict[str, str], args: argparse.Namespace) -> None:
    """The quick start's pipeline at seq 256; a completed run of the same name is reused."""
    missing = [name for name in names.values() if not completed(home, name)]
    if args.skip_train and missing:
        sys.exit(f"--skip-train: runs {', '.join(missing)} are missing in {home}; drop --skip-train")
    shared = [*TRAIN, "--dtype", args.dtype]
    pretrain = [*shared, "--learning-rate", "2e-3", "--max-steps", str(args.pretrain_steps)]
    sft = [*shared, "--learning-rate", "1e-3", "--max-steps", str(args.sft_steps)]
    commands = {
        "ar-base": ["pretrain", "ar", *SIZE, *pretrain],
        "dlm-base": ["pretrain", "diffusion", "--init-from", names["ar-base"], *pretrain],
        "dlm-blocks": ["pretrain", "diffusion", "--init-from", names["ar-base"], *pretrain, *CURRICULUM],
        "ar-chat": ["sft", "--base", names["ar-base"], *sft],
        "dlm-chat": ["sft", "--base", names["dlm-base"], *sft],
    }
    trained: set[str] = set()
    for role, command in commands.items():  # parents first; a retrained parent retrains its children
        if names[role] in missing or PARENT[role] in trained:
            llada(home, *command, "--run-name", names[role])
            trained.add(role)


# ------------------------------------------------------------------------------- the reference


@torch.inference_mode()
def reference_generate(model: Transformer, prompt: torch.Tensor, steps: int, mask_id: int) -> torch.Tensor:
    """docs/algorithms.md section 7 at temperature 0, low-confidence remasking; (B, P) same-length prompts."""
    x = F.pad(prompt, (0, GEN_LENGTH), value=mask_id)
    per_block = steps // (GEN_LENGTH // BLOCK)
    for start in range(prompt.shape[1], x.shape[1], BLOCK):
        masked = (x[:, start : start + BLOCK] == mask_id).sum(dim=1)
        for i in range(per_block):
            counts = masked // per_block + (i < masked % per_block)
            logits = model(x)
            candidates = logits.argmax(dim=-1)
            probs = F.softmax(logits.double(), dim=-1)
            confidence = probs.gather(-1, candidates[..., None]).squeeze(-1)
            confidence[:, start + BLOCK :] = -torch.inf
            confidence = torch.where(x == mask_id, confidence, -torch.inf)
            for row in range(x.shape[0]):
                chosen = confidence[row].topk(int(counts[row])).indices
                x[row, chosen] = candidates[row, chosen]
    return x[:, prompt.shape[1] :]


# ------------------------------------------------------------------------------- decoding


@dataclass
class Models:
    ar: Transformer
    diffusion: Transformer
    mask_id: int
    eos_ids: set[int]
    blocks: Transformer | None = None  # trained with the block curriculum (None: the diffusion model)


def decode(setting: Setting, models: Models, prompts: list[list[int]]) -> float:
    """Decode all GEN_LENGTH positions of every row (no early stop); returns forward passes per row."""
    if setting.kind == "reference":
        reference_generate(models.diffusion, torch.tensor(prompts), GEN_LENGTH, models.mask_id)
        return GEN_LENGTH
    generator = torch.Generator().manual_seed(0)
    if setting.kind == "ar":  # no stop tokens; the prefill gives the first token, each cached step the next
        results = generate_ar(models.ar, prompts, ARSettings(max_new_tokens=GEN_LENGTH), set(), generator)
    else:
        results = diffuse(setting, models, prompts)
    return sum(g.forward_passes for g in results) / len(results)


def diffuse(setting: Setting, models: Models, prompts: list[list[int]]) -> list:
    """All GEN_LENGTH positions decoded (no early stop), in blocks of BLOCK."""
    settings = DiffusionSettings(
        gen_length=GEN_LENGTH, block_length=BLOCK, early_stop=False, **setting.options
    )
    network = models.blocks if setting.kind == "blocks" and models.blocks is not None else models.diffusion
    generator = torch.Generator().manual_seed(0)
    return generate_diffusion(network, prompts, settings, models.mask_id, models.eos_ids, generator)


def cache_is_exact(models: Models, prompts: list[list[int]]) -> str:
    """Whether block-causal decoding gives the same tokens with its cache as without, prompt by prompt."""
    uncached, cached = (next(s for s in SETTINGS if s.name == name) for name in (
        "blocks: block-causal origin", "blocks: block-causal origin + cache"))  # fmt: skip
    same = sum(
        diffuse(uncached, models, [p])[0].token_ids == diffuse(cached, models, [p])[0].token_ids
        for p in prompts
    )
    return f"{same}/{len(prompts)}"


# ------------------------------------------------------------------------------- measuring


@dataclass
class Row:
    model: str
    models: Models
    setting: Setting
    batches: list[list[list[int]]]
    seconds: float = float("inf")  # best of the repeats
    forwards: float = 0.0
    peak_mb: float = float("nan")
    accuracy: str = ""
    same_as_reference: str = ""

    @property
    def batch(self) -> int:
        return len(self.batches[0])

    @property
    def tokens_per_second(self) -> float:
        return GEN_LENGTH * sum(len(b) for b in self.batches) / self.seconds


def time_rows(rows: list[Row], repeats: int) -> None:
    """Best wall time of each row over `repeats`; the first repeat also warms up allocator and kernels.

    Rows are interleaved, so a burst of load from other processes hits every setting alike, and
    the best repeat counts because other processes only ever slow a run down.
    """
    for repeat in range(repeats):
        for row in rows:
            started = time.perf_counter()
            row.forwards = sum(decode(row.setting, row.models, b) for b in row.batches)
            elapsed = time.perf_counter() - started
            row.forwards /= len(row.batches)
            row.seconds = min(row.seconds, elapsed)
            print(
                f"[{repeat + 1}/{repeats}] {row.model} batch {row.batch} {row.setting.name}: {elapsed:.2f} s",
                file=sys.stderr,
                flush=True,
            )


def resident_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def return_freed_memory() -> bool:
    """Make glibc give freed memory back to the system, so that resident memory follows what is live.

    By default glibc keeps freed blocks for reuse, which hides later peaks: from here on, blocks
    over 64 KB are unmapped when freed, and the trim returns the free pages of its heaps. Slows
    allocation, so it is called only after the timing. False where glibc is not available.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024)) and libc.malloc_trim(0) >= 0


def peak_memory_mb(work: Callable[[], object]) -> float:
    """Peak memory `work` added over what was resident before it, in MB."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        work()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = resident_kb("VmRSS")
        work()
        return (resident_kb("VmHWM") - before) / 1024
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        work()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def measure_memory(rows: list[Row]) -> str:
    """Each row's peak over one batch; returns what was measured."""
    if torch.cuda.is_available():
        what = "CUDA allocator peak (max_memory_allocated) over one batch, minus what was allocated before"
    elif return_freed_memory():
        what = "peak RSS over one batch (VmHWM reset by /proc/self/clear_refs) minus RSS before it"
    else:
        what = "growth of ru_maxrss over one batch (shows only new peaks of the process)"
    for row in rows:
        return_freed_memory()  # what the previous row freed must not serve this one unseen
        row.peak_mb = peak_memory_mb(lambda row=row: decode(row.setting, row.models, row.batches[0]))
    return what


# ------------------------------------------------------------------------------- accuracy


def benchmark_replies(
    setting: Setting, chat: dict[str, api.Model], questions: list, eval_batch: int
) -> list[str]:
    """Each benchmark question answered with a chat prompt, as `llada sample --chat` would (early stop on)."""
    model = chat[setting.kind if setting.kind == "ar" else "diffusion"]  # blocks: not a chat model
    prompts = [q.question for q in questions]
    if setting.kind == "reference":
        stops = {model.tokenizer.eos_id, model.tokenizer.im_end_id}
        replies = []
        for prompt in prompts:
            ids = torch.tensor([model.encode_prompt(prompt, chat=True)], device=model.device)
            tokens = reference_generate(model.network, ids, GEN_LENGTH, model.tokenizer.mask_id)[0].tolist()
            end = next((i for i, t in enumerate(tokens) if t in stops), len(tokens))
            replies.append(model.tokenizer.decode(tokens[:end]).strip())
        return replies
    if setting.kind == "ar":
        options = {"max_new_tokens": GEN_LENGTH}
    else:
        options = {"gen_length": GEN_LENGTH, "block_length": BLOCK, **setting.options}
    return [
        result.text
        for i in range(0, len(prompts), eval_batch)
        for result in model.generate(prompts[i : i + eval_batch], chat=True, **options)
    ]


def add_quality(rows: list[Row], chat: dict[str, api.Model], questions: list, eval_batch: int) -> None:
    """Benchmark accuracy (seen / forward / reverse) of every setting; answers equal to the reference's."""
    replies = {}
    for row in rows:
        if row.setting.name not in replies:
            print(f"benchmark questions: {row.setting.name}", file=sys.stderr, flush=True)
            replies[row.setting.name] = benchmark_replies(row.setting, chat, questions, eval_batch)
        report = score_replies(
            questions, replies[row.setting.name], lambda reply, q: answer_matches(reply, q.answer)
        )
        row.accuracy = " / ".join(f"{report.accuracy(g):.0%}" for g in ("seen", "forward", "reverse"))
        if row.setting.kind == "diffusion":
            same = sum(
                a == b for a, b in zip(replies[row.setting.name], replies[REFERENCE.name], strict=True)
            )
            row.same_as_reference = f"{same}/{len(questions)}"


# ------------------------------------------------------------------------------- prompts and models


def equal_length_prompts(model: api.Model, questions: list, count: int) -> list[list[int]]:
    """`count` chat prompts of the most common token length (batches then need no padding)."""
    encoded = [model.encode_prompt(q.question, chat=True) for q in questions]
    length, _ = Counter(len(ids) for ids in encoded).most_common(1)[0]
    same = [ids for ids in encoded if len(ids) == length]
    return [same[i % len(same)] for i in range(count)]


def random_models(preset: str, vocab: int, device: torch.device) -> Models:
    torch.manual_seed(0)
    config = replace(PRESETS[preset], vocab_size=vocab)
    ar = Transformer(replace(config, causal=True)).to(device).eval()
    diffusion = Transformer(replace(config, causal=False)).to(device).eval()
    return Models(ar, diffusion, mask_id=vocab - 1, eos_ids={0})


def print_table(rows: list[Row]) -> None:
    print(
        f"{'model':<14} {'setting':<37} {'batch':>5} {'tok/s':>8} {'x ref':>6} {'fwd/row':>7} {'peak MB':>8}"
        f"  {'accuracy seen / fwd / rev':<28} {'= ref':>5}"
    )
    reference = {}
    for r in rows:
        reference.setdefault((r.model, r.batch), r.tokens_per_second)
        print(
            f"{r.model:<14} {r.setting.name:<37} {r.batch:>5} {r.tokens_per_second:>8.1f}"
            f" {r.tokens_per_second / reference[r.model, r.batch]:>6.2f} {r.forwards:>7.1f} {r.peak_mb:>8.1f}"
            f"  {r.accuracy:<28} {r.same_as_reference:>5}"
        )


def load_average() -> str:
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "unknown"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="llada home of the bench runs")
    parser.add_argument("--skip-train", action="store_true", help="use the runs in --home, never train")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer settings, steps and prompts")
    parser.add_argument("--pretrain-steps", type=int, help="default 300 (30 with --quick)")
    parser.add_argument("--sft-steps", type=int, help="default 150 (15 with --quick)")
    parser.add_argument("--dtype", default="auto", help="training dtype: auto, fp32 or bf16")
    parser.add_argument("--prompts", type=int, help="prompts timed one by one (default 4, 1 with --quick)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best one counts")
    parser.add_argument("--eval-batch", type=int, default=16, help="benchmark questions decoded together")
    args = parser.parse_args()
    args.home = args.home.resolve()
    args.pretrain_steps = args.pretrain_steps or (30 if args.quick else 300)
    args.sft_steps = args.sft_steps or (15 if args.quick else 150)
    args.prompts = args.prompts or (1 if args.quick else 4)
    return args


def main() -> None:
    args = parse_args()
    settings = [s for s in SETTINGS if s.name in QUICK or not args.quick]
    batch_sizes = (1,) if args.quick else (1, 8)
    names = run_names(args.pretrain_steps, args.sft_steps)
    train(args.home, names, args)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chat = {kind: api.load(names[run], str(device), args.home) for kind, run in CHAT_RUNS.items()}
    tokenizer = chat["diffusion"].tokenizer
    stops = {tokenizer.eos_id, tokenizer.im_end_id}
    blocks = api.load(names["dlm-blocks"], str(device), args.home).network
    tiny = Models(chat["ar"].network, chat["diffusion"].network, tokenizer.mask_id, stops, blocks)
    every_question = builtin_corpus().questions
    questions = every_question[:: 6 if args.quick else 1]
    prompts = equal_length_prompts(chat["diffusion"], every_question, max(args.prompts, max(batch_sizes)))
    width = len(prompts[0])
    small = random_models("small", SMALL_VOCAB, device)
    small_prompts = [[(7 * i + j) % (SMALL_VOCAB - 2) + 1 for j in range(width)] for i in range(len(prompts))]
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, load average before: {load_average()}\n"
        f"gen length {GEN_LENGTH}, block {BLOCK}, chat prompts of {width} tokens; "
        f"runs {names['ar-chat']}, {names['dlm-chat']} in {args.home}",
        flush=True,
    )

    rows = [
        Row(label, models, setting, [timed[i : i + batch] for i in range(0, count, batch)])
        for label, models, timed in (
            ("tiny (trained)", tiny, prompts),
            ("small (random)", small, small_prompts),
        )
        for batch, count in ((b, args.prompts if b == 1 else b) for b in batch_sizes)
        for setting in settings
    ]
    time_rows(rows, args.repeats)
    measured = measure_memory(rows)
    quality_rows = [
        r for r in rows if r.model.startswith("tiny") and r.batch == 1 and r.setting.kind != "blocks"
    ]
    add_quality(quality_rows, chat, questions, args.eval_batch)
    print_table(rows)
    print(
        f"tok/s: new tokens of all rows per second, all {GEN_LENGTH} positions decoded (no early stop), "
        f"best of {args.repeats}; peak MB: {measured}\n"
        f"benchmark: {len(questions)} questions with chat prompts, gen length {GEN_LENGTH}, early stop on; "
        f"= ref: answers identical to the reference loop's\n"
        f"block-causal decoding with its cache == without, token for token: {cache_is_exact(tiny, prompts)} "
        "prompts (dlm-blocks is a pretrained model, not a chat model: no accuracy)\n"
        f"load average after: {load_average()}"
    )


if __name__ == "__main__":
    main()
