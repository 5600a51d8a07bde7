"""GRPO's rollouts (docs/algorithms.md section 15): each prompt's group of answers, sampled by the
policy being trained with the project's own samplers (AR: KV-cached decoding; diffusion:
threshold decoding over `gen_length` slots), rewarded 1 for an answer whose first sentence matches
the prompt's expected answer (data/builtin.py answer_matches) and 0 otherwise, and laid out as the
rows the objective scores (objectives/grpo.py Completions)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import Kind
from ..data.builtin import answer_matches
from ..model.tokenizer import Tokenizer
from ..model.transformer import Transformer
from ..objective_configs import ARGRPOConfig
from ..objectives.grpo import Completions
from ..objectives.losses import PromptBatch
from ..sampling.ar import generate_ar
from ..sampling.common import Generation
from ..sampling.diffusion import generate_diffusion
from ..sampling.settings import ARSettings, DiffusionSettings


@dataclass(frozen=True)
class Rollout:
    kind: Kind
    tokenizer: Tokenizer
    answers: list[str]  # each prompt's expected answer, by PromptBatch.index
    config: ARGRPOConfig

    def __call__(
        self, model: Transformer, batch: PromptBatch, generator: torch.Generator | None
    ) -> Completions:
        group = self.config.group_size
        prompts = [ids[:n].tolist() for ids, n in zip(batch.input_ids, batch.lengths.tolist(), strict=True)]
        prompts = [prompt for prompt in prompts for _ in range(group)]
        generations = self.sample(model, prompts, generator)
        expected = [self.answers[i] for i in batch.index.tolist() for _ in range(group)]
        rewards = [
            float(answer_matches(self.tokenizer.decode(g.token_ids), answer))
            for g, answer in zip(generations, expected, strict=True)
        ]
        return self.rows(prompts, generations, torch.tensor(rewards, device=batch.input_ids.device))

    def sample(
        self, model: Transformer, prompts: list[list[int]], generator: torch.Generator | None
    ) -> list[Generation]:
        """One answer per prompt from the model as it is now, in evaluation mode."""
        stops = {self.tokenizer.eos_id, self.tokenizer.im_end_id}
        training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                if self.kind == "ar":
                    settings = ARSettings(
                        temperature=self.config.temperature, max_new_tokens=self.config.gen_length
                    )
                    return generate_ar(model, prompts, settings, stops, generator)
                diffusion = DiffusionSettings(
                    temperature=self.config.temperature, gen_length=self.config.gen_length
                )
                return generate_diffusion(
                    model, prompts, diffusion, self.tokenizer.diffusion_mask_id, stops, generator
                )
        finally:
            model.train(training)

    def rows(
        self, prompts: list[list[int]], generations: list[Generation], rewards: torch.Tensor
    ) -> Completions:
        """Each prompt, then its answer and the stop that ended it (<|im_end|>, as SFT answers end),
        then, for diffusion, EOS to the answer region's end, as the sampler fills it; then padding."""
        eos, stop = self.tokenizer.eos_id, self.tokenizer.im_end_id
        rows: list[list[int]] = []
        spans: list[tuple[int, int, int]] = []
        for asked, g in zip(prompts, generations, strict=True):
            answer = g.token_ids + ([stop] if g.finished else [])
            fill = self.config.gen_length - len(answer) if self.kind == "diffusion" else 0
            rows.append(asked + answer + [eos] * fill)
            spans.append((len(asked), len(answer), fill))
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), eos, dtype=torch.long)
        prompt, completion, region = (torch.zeros_like(ids, dtype=torch.bool) for _ in range(3))
        pad = torch.ones_like(ids, dtype=torch.bool)
        for i, (row, (start, length, fill)) in enumerate(zip(rows, spans, strict=True)):
            ids[i, : len(row)] = torch.tensor(row)
            prompt[i, :start] = True
            completion[i, start : start + length] = True
            region[i, start : start + length + fill] = True
            pad[i, : len(row)] = False
        ids, prompt, region, completion, pad = (
            t.to(rewards.device) for t in (ids, prompt, region, completion, pad)
        )
        return Completions(ids, prompt, region, completion, pad, rewards)
