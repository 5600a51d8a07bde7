"""Sampling throughput: the section 7 reference loop vs llada's samplers and AR, with held-out accuracy.

    python bench/sample_throughput.py [--home DIR] [--skip-train] [--quick]

Trains (or reuses, in --home) a `tiny` AR model, a diffusion model continued from it, and an SFT of
each on the builtin corpus, through the CLI. Then, at gen length 128 and block 32, it times:
- the reference: ALGORITHMS.md section 7 at temperature 0 in its most direct form (a full forward
  every step, float64 softmax confidence over the whole sequence, top-k commit);
- llada's diffusion sampler at the same settings, then with --threshold 0.9, with a prefix cache
  and with a dual cache (threshold 0.9 for both);
- AR with its KV cache on the AR model of the same shape.
Every speed row decodes all 128 positions (no early stop, AR ignores its stop tokens), so
tokens/s = 128 * prompts / wall time. Beside each setting: its exact-match accuracy on the builtin
held-out questions (chat prompts, early stop on, as a user runs it), so speed never hides a quality
loss. The speed part is repeated at the `small` preset with random weights (pure per-forward cost;
random weights are never confident, so a threshold commits one token per step there).
Peak MB = peak resident memory during a setting minus the resident memory before it (Linux VmHWM
after resetting it through /proc/self/clear_refs; else ru_maxrss, which only shows new peaks;
allocator peak on CUDA).
"""

from __future__ import annotations

import argparse
import json
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
from llada_cli.engine.evaluate import heldout_accuracy
from llada_cli.engine.model import Transformer
from llada_cli.engine.sampling.ar import ARSettings, generate_ar
from llada_cli.engine.sampling.diffusion import DiffusionSettings, generate_diffusion

GEN_LENGTH, BLOCK = 128, 32
SIZE = ["--preset", "tiny", "--vocab-size", "1024", "--seq-len", "256"]  # 256: prompt + 128 must fit
SMALL_VOCAB = 6400
DEFAULT_HOME = Path("/tmp/llada-bench-home")
PARENT = {"ar-base": None, "dlm-base": "ar-base", "ar-chat": "ar-base", "dlm-chat": "dlm-base"}
CHAT_RUNS = {"ar": "ar-chat", "diffusion": "dlm-chat"}
TRAIN = ["--batch-size", "16", "--overwrite"]


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # reference | diffusion | ar
    options: dict = field(default_factory=dict)  # DiffusionSettings fields


SETTINGS = [
    Setting("reference (section 7)", "reference"),
    Setting("llada", "diffusion", {"steps": GEN_LENGTH}),
    Setting("llada --threshold 0.9", "diffusion", {"threshold": 0.9}),
    Setting("llada --threshold 0.9 --cache prefix", "diffusion", {"threshold": 0.9, "cache": "prefix"}),
    Setting("llada --threshold 0.9 --cache dual", "diffusion", {"threshold": 0.9, "cache": "dual"}),
    Setting("AR + KV cache", "ar"),
]
QUICK = {"reference (section 7)", "llada", "llada --threshold 0.9 --cache dual", "AR + KV cache"}


# ------------------------------------------------------------------------------- training


def run_names(pretrain_steps: int, sft_steps: int) -> dict[str, str]:
    base = f"p{pretrain_steps}"
    return {
        "ar-base": f"ar-base-{base}",
        "dlm-base": f"dlm-base-{base}",
        "ar-chat": f"ar-chat-{base}-s{sft_steps}",
        "dlm-chat": f"dlm-chat-{base}-s{sft_steps}",
    }


def completed(home: Path, name: str) -> bool:
    info = home / "runs" / name / "run.json"
    return info.is_file() and json.loads(info.read_text()).get("status") == "completed"


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
    """ALGORITHMS.md section 7 at temperature 0, low-confidence remasking; (B, P) equal-length prompts."""
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


def decode(setting: Setting, models: Models, prompts: list[list[int]]) -> float:
    """Decode all GEN_LENGTH positions of every row (no early stop); returns forward passes per row."""
    if setting.kind == "reference":
        reference_generate(models.diffusion, torch.tensor(prompts), GEN_LENGTH, models.mask_id)
        return GEN_LENGTH
    generator = torch.Generator().manual_seed(0)
    if setting.kind == "ar":  # no stop tokens; the prefill gives the first token, each cached step the next
        results = generate_ar(models.ar, prompts, ARSettings(max_new_tokens=GEN_LENGTH), set(), generator)
    else:
        settings = DiffusionSettings(
            gen_length=GEN_LENGTH, block_length=BLOCK, early_stop=False, **setting.options
        )
        results = generate_diffusion(
            models.diffusion, prompts, settings, models.mask_id, models.eos_ids, generator
        )
    return sum(g.forward_passes for g in results) / len(results)


# ------------------------------------------------------------------------------- measuring


def resident_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def peak_memory_mb(work: Callable[[], float]) -> tuple[float, float]:
    """Run `work`; its result and the peak memory it added over what was resident before it, in MB."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        result = work()
        return result, (torch.cuda.max_memory_allocated() - before) / 2**20
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = resident_kb("VmRSS")
        result = work()
        return result, (resident_kb("VmHWM") - before) / 1024
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = work()
        return result, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def seconds(setting: Setting, models: Models, batches: list[list[list[int]]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        decode(setting, models, batch)
    return time.perf_counter() - started


@dataclass
class Row:
    model: str
    setting: str
    batch: int
    rate: float
    ratio: float
    forwards: float
    peak_mb: float
    accuracy: str = ""


def speed_rows(
    label: str, models: Models, prompts: list[list[int]], settings: list[Setting], batch: int, repeats: int
) -> list[Row]:
    """New tokens/s of each setting, best of `repeats` (other processes only ever slow a run down)."""
    batches = [prompts[i : i + batch] for i in range(0, len(prompts), batch)]
    # The memory run doubles as the warm-up (allocator, kernels) and counts the forward passes.
    measured = {s.name: peak_memory_mb(lambda s=s: decode(s, models, batches[0])) for s in settings}
    best = dict.fromkeys(measured, float("inf"))
    for _ in range(repeats):
        for setting in settings:  # interleaved, so a burst of load elsewhere hits every setting alike
            best[setting.name] = min(best[setting.name], seconds(setting, models, batches))
    reference = best[settings[0].name]
    return [
        Row(
            label,
            name,
            batch,
            GEN_LENGTH * len(prompts) / best[name],
            reference / best[name],
            *measured[name],
        )
        for name in best
    ]


# ------------------------------------------------------------------------------- accuracy


def heldout_replies(
    setting: Setting, chat: dict[str, api.Model], questions: list, eval_batch: int
) -> list[str]:
    """Each held-out question answered with a chat prompt, as `llada sample --chat` would (early stop on)."""
    model = chat[setting.kind if setting.kind == "ar" else "diffusion"]
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


def accuracy_text(questions: list, replies: list[str]) -> str:
    report = heldout_accuracy(questions, lambda _: replies, answer_matches)
    return " / ".join(f"{report.accuracy(group):.0%}" for group in ("all", "forward", "reverse"))


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
        f"{'model':<14} {'setting':<37} {'batch':>5} {'tok/s':>8} {'x ref':>6} {'fwd/row':>7}"
        f" {'peak MB':>8}  held-out acc all / fwd / rev"
    )
    for r in rows:
        print(
            f"{r.model:<14} {r.setting:<37} {r.batch:>5} {r.rate:>8.1f} {r.ratio:>6.2f} {r.forwards:>7.1f}"
            f" {r.peak_mb:>8.1f}  {r.accuracy}"
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
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats; the best one counts")
    parser.add_argument("--eval-batch", type=int, default=16, help="held-out questions decoded together")
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
    tiny = Models(chat["ar"].network, chat["diffusion"].network, tokenizer.mask_id, stops)
    heldout = builtin_corpus().heldout
    questions = heldout[: 16 if args.quick else None]
    prompts = equal_length_prompts(chat["diffusion"], heldout, max(args.prompts, max(batch_sizes)))
    width = len(prompts[0])
    small = random_models("small", SMALL_VOCAB, device)
    small_prompts = [[(7 * i + j) % (SMALL_VOCAB - 2) + 1 for j in range(width)] for i in range(len(prompts))]
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, load average before: {load_average()}\n"
        f"gen length {GEN_LENGTH}, block {BLOCK}, chat prompts of {width} tokens; "
        f"runs {names['ar-chat']}, {names['dlm-chat']} in {args.home}",
        flush=True,
    )

    rows: list[Row] = []
    for label, models, timed in (("tiny (trained)", tiny, prompts), ("small (random)", small, small_prompts)):
        for batch in batch_sizes:
            chosen = timed[: args.prompts if batch == 1 else batch]
            rows += speed_rows(label, models, chosen, settings, batch, args.repeats)
    replies = {s.name: heldout_replies(s, chat, questions, args.eval_batch) for s in settings}
    for row in rows:
        if row.model.startswith("tiny") and row.batch == 1:
            row.accuracy = accuracy_text(questions, replies[row.setting])
    print_table(rows)
    same = sum(a == b for a, b in zip(replies[SETTINGS[0].name], replies["llada"], strict=True))
    print(
        f"held-out: {len(questions)} questions, chat prompts, gen length {GEN_LENGTH}, early stop on; "
        f"reference and llada answers identical on {same}/{len(questions)}\n"
        f"load average after: {load_average()}"
    )


if __name__ == "__main__":
    main()
