"""Likelihood and task evaluation (docs/algorithms.md section 10).

AR: exact negative log likelihood per token and perplexity. Diffusion: the Monte Carlo ELBO,
an upper bound on the NLL, reported as bits per token and a perplexity bound, so the two
kinds can stand side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..config import DataConfig, Kind
from ..data.splits import validation_rows
from ..errors import UsageError, named
from ..model.transformer import Transformer
from ..objectives.masking import document_attention_mask, document_ids
from ..runs.loaded import LoadedRun
from ..runs.registry import Registry


@dataclass
class LikelihoodReport:
    nats_per_token: float  # exact for AR, an upper bound for diffusion
    tokens: int
    exact: bool

    @property
    def bits_per_token(self) -> float:
        return self.nats_per_token / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nats_per_token, 50.0))

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "nats_per_token": round(self.nats_per_token, 5),
            "bits_per_token": round(self.bits_per_token, 5),
            "perplexity": round(self.perplexity, 4),
            "tokens": self.tokens,
            "exact": self.exact,
        }


def stratified_mask_counts(length: int, samples: int, generator: torch.Generator) -> torch.Tensor:
    """How many positions each Monte Carlo sample masks: k, k + L/n, ... wrapped into [1, L]."""
    start = int(torch.randint(1, length + 1, (1,), generator=generator))
    spread = torch.arange(samples) * max(1, length // samples)
    return (start + spread - 1) % length + 1


def random_mask(length: int, count: int, generator: torch.Generator) -> torch.Tensor:
    mask = torch.zeros(length, dtype=torch.bool)
    mask[torch.randperm(length, generator=generator)[:count]] = True
    return mask


# the samples' mask counts are held at once; a million samples already estimate a row's ELBO to a
# thousandth of one sample's spread
MAX_MC_NUM = 1 << 20


@torch.no_grad()
def diffusion_answer_nll(
    model: Transformer,
    prompt: list[int],
    answer: list[int],
    mask_id: int,
    mc_num: int,
    generator: torch.Generator,
    batch_size: int = 32,
    doc_eos_id: int | None = None,
) -> float:
    """Upper bound on -log p(answer | prompt) in nats: mean over samples of sum(CE over masked) * L / k.

    doc_eos_id: the run trained with a document mask; attend within documents and never mask an
    EOS (its place is given away by the attention pattern), as in training.
    """
    if not 1 <= mc_num <= MAX_MC_NUM:
        raise UsageError(f"{named('mc_num')} {mc_num} is out of range: 1 to {MAX_MC_NUM:,} samples")
    device = next(model.parameters()).device
    sequence = torch.tensor(prompt + answer)
    maskable = torch.arange(len(answer))
    attn_mask = None
    if doc_eos_id is not None:
        maskable = maskable[torch.tensor(answer) != doc_eos_id]
        attn_mask = document_attention_mask(document_ids(sequence[None], doc_eos_id), causal=False).to(device)
    length = len(maskable)
    if length == 0:
        return 0.0
    counts = stratified_mask_counts(length, mc_num, generator)
    total = 0.0
    for start in range(0, mc_num, batch_size):
        chunk = counts[start : start + batch_size]
        masks = torch.zeros(len(chunk), len(answer), dtype=torch.bool)
        for row, k in enumerate(chunk.tolist()):
            masks[row, maskable[random_mask(length, k, generator)]] = True
        noisy = sequence.repeat(len(chunk), 1)
        noisy[:, len(prompt) :][masks] = mask_id
        logits = model(noisy.to(device), attn_mask=attn_mask)[:, len(prompt) :].float()
        targets = torch.tensor(answer, device=device).expand(len(chunk), -1)
        ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        ce = (ce * masks.to(device)).sum(dim=1) * length / chunk.to(device)
        total += ce.sum().item()
    return total / mc_num


@torch.no_grad()
def ar_answer_nll(model: Transformer, prompt: list[int], answer: list[int]) -> float:
    """Exact -log p(answer | prompt) in nats."""
    device = next(model.parameters()).device
    sequence = torch.tensor([prompt + answer], device=device)
    logits = model(sequence[:, :-1]).float()[0, len(prompt) - 1 :]
    return F.cross_entropy(logits, sequence[0, len(prompt) :], reduction="sum").item()


def answer_log_likelihood(
    model: Transformer,
    kind: Kind,
    prompt: list[int],
    answer: list[int],
    mask_id: int | None,
    mc_num: int = 128,
    seed: int = 0,
) -> float:
    if not answer:
        return 0.0
    if kind == "ar":
        if not prompt:
            raise UsageError("scoring with an AR model needs a non-empty prompt to condition on")
        return -ar_answer_nll(model, prompt, answer)
    if not prompt and model.config.logit_shift:
        raise UsageError(
            "scoring with a diffusion model that has the logit shift needs a non-empty prompt: "
            "its first token has no state before it"
        )
    if mask_id is None:
        raise UsageError("scoring with a diffusion model needs the id of its mask token")
    generator = torch.Generator().manual_seed(seed)
    return -diffusion_answer_nll(model, prompt, answer, mask_id, mc_num, generator)


@torch.no_grad()
def ar_likelihood(
    model: Transformer,
    rows: torch.Tensor,
    batch_size: int = 16,
    doc_eos_id: int | None = None,
    on_progress: OnProgress | None = None,
) -> LikelihoodReport:
    """Next-token NLL over packed rows (the first token of a row has no context and is not scored).

    doc_eos_id: attend within documents only, as a run trained with a document mask did.
    """
    device = next(model.parameters()).device
    nats, tokens = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size].to(device)
        inputs = batch[:, :-1]
        attn_mask = None
        if doc_eos_id is not None:
            attn_mask = document_attention_mask(document_ids(inputs, doc_eos_id), causal=True)
        logits = model(inputs, attn_mask=attn_mask).float()
        nats += F.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="sum").item()
        tokens += batch[:, 1:].numel()
        if on_progress is not None:
            on_progress(min(start + batch_size, len(rows)), len(rows))
    return LikelihoodReport(nats / max(1, tokens), tokens, exact=True)


@torch.no_grad()
def diffusion_likelihood(
    model: Transformer,
    rows: torch.Tensor,
    mask_id: int,
    mc_num: int,
    seed: int = 0,
    batch_size: int = 16,
    doc_eos_id: int | None = None,
    on_progress: OnProgress | None = None,
) -> LikelihoodReport:
    """Per-token ELBO bound over packed rows: each row is an unconditional 'answer' of length L.

    Under the logit shift the first token has no state before it to be predicted from: it is the
    context of the rest and is not scored, as for an AR model (ar_likelihood).
    """
    generator = torch.Generator().manual_seed(seed)
    context = int(model.config.logit_shift)
    nats = 0.0
    for done, row in enumerate(rows, start=1):
        ids = row.tolist()
        nats += diffusion_answer_nll(
            model, ids[:context], ids[context:], mask_id, mc_num, generator, batch_size, doc_eos_id
        )
        if on_progress is not None:
            on_progress(done, len(rows))
    tokens = rows[:, context:].numel()
    return LikelihoodReport(nats / max(1, tokens), tokens, exact=False)


@dataclass
class AccuracyReport:
    correct: dict[str, int]
    total: dict[str, int]

    def accuracy(self, group: str) -> float:
        return self.correct.get(group, 0) / max(1, self.total.get(group, 0))

    def to_dict(self) -> dict[str, dict[str, float | int]]:
        return {
            group: {
                "accuracy": round(self.accuracy(group), 4),
                "correct": self.correct.get(group, 0),
                "total": self.total[group],
            }
            for group in self.total
        }


OnProgress = Callable[[int, int], None]  # (done, total): a long wait reports how far it is


def benchmark_accuracy(
    questions: list,
    answer: Callable[[list[str]], list[str]],
    matches: Callable[[str, Any], bool],
    on_progress: OnProgress | None = None,
    chunk: int = 16,
) -> AccuracyReport:
    """Accuracy per question set (split), per set and language, overall; `matches(reply, question)`
    judges a reply. Questions are answered `chunk` at a time, so a caller can show how far it is."""
    replies: list[str] = []
    for start in range(0, len(questions), chunk):
        replies += answer([q.question for q in questions[start : start + chunk]])
        if on_progress is not None:
            on_progress(len(replies), len(questions))
    return score_replies(questions, replies, matches)


def score_replies(questions: list, replies: list[str], matches: Callable[[str, Any], bool]) -> AccuracyReport:
    """Right answers per group: "all", each split, and each split/lang of a question with a language."""
    correct: dict[str, int] = {}
    total: dict[str, int] = {}
    for question, reply in zip(questions, replies, strict=True):
        ok = matches(reply, question)
        languages = [f"{question.split}/{question.lang}"] if question.lang else []
        for group in ("all", question.split, *languages):
            total[group] = total.get(group, 0) + 1
            correct[group] = correct.get(group, 0) + int(ok)
    return AccuracyReport(correct, total)


def heldout_likelihood(
    registry: Registry,
    loaded: LoadedRun,
    data: DataConfig,
    max_rows: int,
    mc_num: int,
    seed: int,
    on_progress: OnProgress | None = None,
) -> LikelihoodReport:
    """Perplexity (AR) or ELBO bound (diffusion) on the rows the run held out of `data.data`.

    Rows are cut, split and seeded as the run's training did (its row length, validation share
    and seed), and scored with the attention it trained with.
    """
    info = loaded.info
    seq_len = info.seq_len or loaded.model.config.seq_len
    val_fraction = info.data.val_fraction if info.data else data.val_fraction
    split_seed = info.train.seed if info.train else 0
    source = DataConfig(data.data, data.jsonl_field, val_fraction)
    tokenizer = loaded.tokenizer
    rows = validation_rows(registry, source, tokenizer, loaded.tokenizer_file, seq_len, split_seed)
    rows = rows[:max_rows]
    doc_eos_id = tokenizer.eos_id if getattr(info.objective, "doc_attention_mask", False) else None
    if loaded.kind == "ar":
        return ar_likelihood(loaded.model, rows, doc_eos_id=doc_eos_id, on_progress=on_progress)
    return diffusion_likelihood(
        loaded.model,
        rows,
        tokenizer.diffusion_mask_id,
        mc_num,
        seed=seed,
        doc_eos_id=doc_eos_id,
        on_progress=on_progress,
    )
