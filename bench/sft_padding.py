"""How much of diffusion SFT trains EOS padding instead of the answer, per pad policy.

    python bench/sft_padding.py [--batches 2000] [--batch-size 16] [--seq-len 128] [--json]

The builtin SFT conversations as diffusion SFT rows (one assistant turn per row, a tokenizer of
2,048 ids trained on the builtin corpus), drawn in random batches and padded to each batch's
longest row as training does (losses.sft_batch); each batch goes through DiffusionSFTObjective
with a model whose logits are all 0 (only the masks and weights matter). Printed per policy:
- EOS share of trained tokens: masked padding positions over all masked positions;
- EOS share of trained weight: the padding's share of sum w / (p answer_len) over masked positions
  (the objective's `pad_weight_share` metric);
- answer weight per row: the real answer's share of its row's answer_len, averaged over rows.
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch
from torch import nn

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.data.builtin import builtin_corpus
from llada_cli.engine.data.sft import build_sft_rows
from llada_cli.engine.model.tokenizer import Tokenizer
from llada_cli.engine.objective_configs import PAD_POLICIES
from llada_cli.engine.objectives.diffusion_sft import DiffusionSFTObjective
from llada_cli.engine.objectives.losses import sft_batch


class ZeroLogits(nn.Module):
    """All logits 0; remembers the masked positions of its last input."""

    def __init__(self, vocab: int, mask_id: int) -> None:
        super().__init__()
        self.config = ModelConfig(vocab_size=vocab, hidden_size=2, num_attention_heads=1, causal=False)
        self.lm_head = nn.Linear(2, vocab, bias=False)
        nn.init.zeros_(self.lm_head.weight)
        self.mask_id, self.masked = mask_id, torch.zeros(0)

    def hidden_states(self, ids, positions, attn_mask, past):
        self.masked = ids == self.mask_id
        return torch.zeros(*ids.shape, 2), []


def measure(policy: str, rows, mask_id: int, vocab: int, batches: int, batch_size: int) -> dict:
    objective = DiffusionSFTObjective(pad_policy=policy, mask_id=mask_id)
    model = ZeroLogits(vocab, mask_id)
    picks = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    pad_tokens = trained_tokens = 0
    weight_shares, answer_shares = [], []
    for _ in range(batches):
        index = picks.choice(len(rows.input_ids), batch_size, replace=False)
        ids, response, pad = (
            torch.from_numpy(np.asarray(t[index]))
            for t in (rows.input_ids, rows.response_mask, rows.pad_mask)
        )
        batch = sft_batch(ids.long(), response, pad)
        out = objective(model, batch, generator, 0.0)
        pad_tokens += int((model.masked & batch.pad_mask).sum())
        trained_tokens += int(model.masked.sum())
        weight_shares.append(float(out.metrics["pad_weight_share"]))
        real = batch.response_mask & ~batch.pad_mask
        answer_len = (objective.token_weights(batch.pad_mask) * objective.answer(batch)).sum(1)
        answer_shares += (real.sum(1) / answer_len).tolist()
    return {
        "policy": policy,
        "eos_token_share": round(pad_tokens / max(1, trained_tokens), 4),
        "eos_weight_share": round(statistics.fmean(weight_shares), 4),
        "answer_weight_per_row": round(statistics.fmean(answer_shares), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    corpus = builtin_corpus()
    tokenizer = Tokenizer.train(corpus.documents, 2048).with_mask_token()
    rows = build_sft_rows(corpus.conversations, tokenizer, args.seq_len, one_turn_per_row=True)
    answers = (rows.response_mask & ~rows.pad_mask).sum(1)
    lengths = (~rows.pad_mask).sum(1)
    results = [
        measure(policy, rows, tokenizer.mask_id, tokenizer.vocab_size, args.batches, args.batch_size)
        for policy in PAD_POLICIES
    ]
    if args.json:
        print(json.dumps({"rows": len(answers), "results": results}))
        return
    print(
        f"{len(answers)} rows: answers {answers.mean():.1f} tokens on average (with <|im_end|>), "
        f"rows {lengths.mean():.1f} (longest {lengths.max()}); {args.batches} batches of {args.batch_size}"
    )
    print(f"{'policy':<8} {'EOS share of tokens':>20} {'of weight':>10} {'answer weight/row':>18}")
    for r in results:
        print(
            f"{r['policy']:<8} {r['eos_token_share']:>20.0%} {r['eos_weight_share']:>10.0%} "
            f"{r['answer_weight_per_row']:>18.0%}"
        )


if __name__ == "__main__":
    main()
