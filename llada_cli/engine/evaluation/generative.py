"""Generative perplexity and unigram entropy of a run's samples (MDLM's sample-quality metrics;
docs/eval.md).

The run writes `samples` texts from nothing but a document boundary (an EOS, as a document starts
in its pretraining rows), at temperature 1 (its full distribution: greedy samples would flatter
it), `length` tokens each. A reference AR run scores them: the perplexity of the reference on the
texts, re-tokenized with its own tokenizer, so any AR run can judge any run. A low perplexity from
repeating itself is caught by the unigram entropy of each sample's tokens (nats; its mean over the
samples): a sample that repeats a few tokens has a low one.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from ..errors import UsageError
from ..model.tokenizer import Tokenizer
from ..model.transformer import Transformer
from .evaluate import ar_answer_nll


@dataclass(frozen=True)
class GenerativeReport:
    perplexity: float  # of the reference model on the samples' tokens
    unigram_entropy: float  # mean over samples, nats
    samples: int
    tokens: int  # scored by the reference

    def to_dict(self) -> dict[str, float | int]:
        return {
            "perplexity": round(self.perplexity, 4),
            "unigram_entropy": round(self.unigram_entropy, 4),
            "samples": self.samples,
            "tokens": self.tokens,
        }


def unigram_entropy(tokens: list[int]) -> float:
    """-sum p log p of the tokens' frequencies within one sample, in nats (0 for an empty one)."""
    counts = Counter(tokens)
    total = sum(counts.values())
    return -sum(c / total * math.log(c / total) for c in counts.values()) if total else 0.0


def generative_report(
    samples: list[list[int]], tokenizer: Tokenizer, reference: Transformer, reference_tokenizer: Tokenizer
) -> GenerativeReport:
    """The reference's perplexity on the samples' texts, each after an EOS, and their unigram entropy."""
    nats, scored = 0.0, 0
    for ids in samples:
        text = tokenizer.decode(ids)
        target = reference_tokenizer.encode(text)
        if target:
            nats += ar_answer_nll(reference, [reference_tokenizer.eos_id], target)
            scored += len(target)
    if scored == 0:
        raise UsageError("every sample was empty (it ended at once): there is nothing to score")
    entropy = sum(unigram_entropy(ids) for ids in samples) / len(samples)
    return GenerativeReport(math.exp(min(nats / scored, 50.0)), entropy, len(samples), scored)
