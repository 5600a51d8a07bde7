"""GRPO with a verifiable reward for both kinds (docs/algorithms.md section 15).

Each prompt's answers are sampled as a group of G by the policy itself (training/rollouts.py, which
the objective is given as `rollout`), rewarded 1 when the answer matches and 0 otherwise, and each
answer's advantage is its reward against its group's: (r - mean) / (std + 1e-4). The loss is
DeepSeekMath's, per answer token, averaged over an answer's tokens and then over answers:

    -( min(rho * A, clip(rho, 1 - eps, 1 + eps) * A) - kl_beta * KL ),   rho = pi(o_k) / pi_old(o_k),
    KL = ref(o_k) / pi(o_k) - log(ref(o_k) / pi(o_k)) - 1   (Schulman's unbiased, non-negative k3).

pi_old is the policy that sampled: the same answers serve `inner_steps` optimizer steps (d1's mu),
and from the second on rho moves away from 1 and the clipping bites. AR: the exact per-token
log-probabilities. Diffusion: masked forward passes estimate them (`estimator`): coupled
(DiffuCoder: the answer region masked at a random rate t, then at the complementary slots; each
token read in the pass that masks it) or d1 (diffu-GRPO: the whole region masked and each prompt
token masked with probability `prompt_mask_prob`; one pass). The masks are drawn afresh per inner
step, the same for pi, pi_old and the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model.transformer import Transformer
from ..objective_configs import ARGRPOConfig, DiffusionGRPOConfig
from .dpo import row_sums
from .losses import LossOutput, PromptBatch, selected_logits
from .masking import apply_mask, padding_attention_mask, uniform


@dataclass
class Completions:
    """A batch's sampled answers as rows, each prompt's group of answers one after another."""

    input_ids: Tensor  # (N, W) the prompt, the answer region, then EOS padding
    prompt: Tensor  # (N, W) bool
    region: Tensor  # (N, W) bool: what the sampler wrote (diffusion: the answer, its stop, EOS fill)
    completion: Tensor  # (N, W) bool: the tokens scored: the answer and the stop token that ended it
    pad: Tensor  # (N, W) bool: columns past the row's end
    rewards: Tensor  # (N,) float


Rollout = Callable[[Transformer, PromptBatch, torch.Generator | None], Completions]


def group_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """(N,) each reward against its group's (consecutive `group_size` rows): (r - mean) / (std + 1e-4),
    std with Bessel's correction; 0 for every answer of a group whose rewards are all equal."""
    groups = rewards.view(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    return (centred / (groups.std(dim=1, keepdim=True) + 1e-4)).reshape(-1)


def grpo_loss(
    logp: Tensor,
    old: Tensor,
    reference: Tensor | None,
    advantages: Tensor,
    completion: Tensor,
    clip_eps: float,
    kl_beta: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss from per-token log-probabilities (T,) of the policy, the sampling policy and the
    reference (None: no KL term), listed row-major at `completion` (N, W); advantages (N,)."""
    rows = completion.nonzero()[:, 0]
    advantage = advantages[rows]
    ratio = (logp - old).exp()
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps)
    surrogate = torch.minimum(ratio * advantage, clipped * advantage)
    kl = torch.zeros_like(logp)
    if reference is not None:
        gap = reference - logp
        kl = gap.exp() - gap - 1
    per_token = surrogate - kl_beta * kl
    per_answer = row_sums(per_token, completion) / completion.sum(dim=1).clamp(min=1)
    metrics = {
        "kl": kl.mean().detach(),
        "clip_fraction": ((ratio - clipped).abs() > 0).float().mean().detach(),
    }
    return -per_answer.mean(), metrics


def ar_token_log_probs(model: Transformer, completions: Completions) -> Tensor:
    """(T,) exact log p(o_k | prompt, o_<k) of each answer token, row-major."""
    ids, scored = completions.input_ids, completions.completion[:, 1:]
    logits = selected_logits(model, ids[:, :-1], scored)
    return -F.cross_entropy(logits, ids[:, 1:][scored], reduction="none")


def d1_token_log_probs(
    model: Transformer, completions: Completions, masked_prompt: Tensor, mask_id: int
) -> Tensor:
    """(T,) d1's estimate of log p(o_k | prompt): the whole answer region masked, and the prompt
    tokens `masked_prompt`; every answer token read in the same forward pass."""
    c = completions
    noisy = apply_mask(c.input_ids, c.region | masked_prompt, mask_id)
    logits = selected_logits(model, noisy, c.completion, attn_mask=padding_attention_mask(c.pad))
    return -F.cross_entropy(logits, c.input_ids[c.completion], reduction="none")


def coupled_token_log_probs(
    model: Transformer, completions: Completions, masked: Tensor, mask_id: int
) -> Tensor:
    """(T,) DiffuCoder's coupled estimate of log p(o_k | prompt, the visible answer tokens): two passes,
    the answer region masked at `masked` and at the rest of the region; each answer token read in
    the pass that masks it, so every token is scored once, with part of the answer visible."""
    c = completions
    other = c.region & ~masked
    noisy = torch.cat((apply_mask(c.input_ids, masked, mask_id), apply_mask(c.input_ids, other, mask_id)))
    select = torch.cat((masked & c.completion, other & c.completion))
    pad = torch.cat((c.pad, c.pad))
    logits = selected_logits(model, noisy, select, attn_mask=padding_attention_mask(pad))
    logp = -F.cross_entropy(logits, c.input_ids.repeat(2, 1)[select], reduction="none")
    table = torch.zeros(select.shape, dtype=logp.dtype, device=logp.device)
    table[select] = logp  # back to one value per answer token, in the rows' order
    rows = c.input_ids.shape[0]
    return (table[:rows] + table[rows:])[c.completion]


@dataclass
class Sampled:
    """One micro-batch's answers, reused for `inner_steps` optimizer steps, with what stays fixed
    over them: per inner step, the masks the diffusion estimator draws and the sampling policy's
    and the reference's token log-probabilities."""

    completions: Completions
    masks: list[Tensor]
    old: list[Tensor]  # empty with one inner step: the policy is the sampling policy
    reference: list[Tensor]  # empty without a KL term

    def state_dict(self) -> dict:
        return {
            "completions": vars(self.completions),
            **{k: getattr(self, k) for k in ("masks", "old", "reference")},
        }

    @classmethod
    def from_state(cls, state: dict) -> Sampled:
        return cls(Completions(**state["completions"]), state["masks"], state["old"], state["reference"])


@dataclass
class Memory:
    """What a GRPO run carries from step to step: the objective's calls and the answers kept per
    micro-batch. Saved in each checkpoint (trainer.py), so a resumed run reuses the same answers."""

    calls: int = 0
    kept: dict[int, Sampled] = field(default_factory=dict)

    def state_dict(self) -> dict:
        return {"calls": self.calls, "kept": {str(k): v.state_dict() for k, v in self.kept.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state["calls"])
        self.kept = {int(k): Sampled.from_state(v) for k, v in state["kept"].items()}


@dataclass(frozen=True, kw_only=True)
class ARGRPOObjective(ARGRPOConfig):
    reference: Transformer = field(repr=False, compare=False)
    rollout: Rollout = field(repr=False, compare=False)
    micro_batches: int = 1  # the trainer's calls per optimizer step (gradient accumulation)
    memory: Memory = field(default_factory=Memory, repr=False, compare=False)

    def __call__(
        self, model: Transformer, batch: PromptBatch, generator: torch.Generator | None, progress: float
    ) -> LossOutput:
        step, micro = divmod(self.memory.calls, self.micro_batches)
        inner = step % self.inner_steps
        self.memory.calls += 1
        if inner == 0:  # new answers; the batch of a reusing step is not needed
            self.memory.kept[micro] = self._sample(model, batch, generator)
        kept = self.memory.kept[micro]
        c = kept.completions
        logp = self.token_log_probs(model, c, kept.masks[inner] if kept.masks else None)
        old = kept.old[inner] if kept.old else logp.detach()
        reference = kept.reference[inner] if kept.reference else None
        advantages = group_advantages(c.rewards, self.group_size)
        loss, metrics = grpo_loss(logp, old, reference, advantages, c.completion, self.clip_eps, self.kl_beta)
        groups = c.rewards.view(-1, self.group_size)
        metrics |= {
            "reward": c.rewards.mean(),
            "answer_tokens": c.completion.sum(dim=1).float().mean(),
            "flat_groups": (groups.max(dim=1).values == groups.min(dim=1).values).float().mean(),
        }
        return LossOutput(loss, c.completion.sum(), dict(metrics))

    def _sample(self, model: Transformer, batch: PromptBatch, generator: torch.Generator | None) -> Sampled:
        """The group's answers, and the log-probabilities that stay fixed while they are reused."""
        c = self.rollout(model, batch, generator)
        masks = self.inner_masks(c, generator)
        steps = [masks[i] if masks else None for i in range(self.inner_steps)]
        with torch.no_grad():
            old = [self.token_log_probs(model, c, m) for m in steps] if self.inner_steps > 1 else []
            reference = [self.token_log_probs(self.reference, c, m) for m in steps] if self.kl_beta else []
        return Sampled(c, masks, old, reference)

    def inner_masks(self, completions: Completions, generator: torch.Generator | None) -> list[Tensor]:
        """The masks each inner step's estimate uses (none: AR's log-probabilities are exact)."""
        return []

    def token_log_probs(
        self, model: Transformer, completions: Completions, masked_prompt: Tensor | None
    ) -> Tensor:
        return ar_token_log_probs(model, completions)

    def state_dict(self) -> dict:
        return self.memory.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.memory.load_state_dict(state)


@dataclass(frozen=True, kw_only=True)
class DiffusionGRPOObjective(ARGRPOObjective, DiffusionGRPOConfig):
    mask_id: int

    def inner_masks(self, completions: Completions, generator: torch.Generator | None) -> list[Tensor]:
        """d1: the prompt tokens masked, each with probability prompt_mask_prob; coupled: the answer
        region's tokens masked in the first pass, each with a probability t ~ U(0, 1) drawn per row."""
        c = completions
        shape = tuple(c.prompt.shape)
        if self.estimator == "d1":
            return [
                c.prompt & (uniform(shape, generator, c.prompt.device) < self.prompt_mask_prob)
                for _ in range(self.inner_steps)
            ]
        masks = []
        for _ in range(self.inner_steps):
            t = uniform((shape[0], 1), generator, c.prompt.device)
            masks.append(c.region & (uniform(shape, generator, c.prompt.device) < t))
        return masks

    def token_log_probs(self, model: Transformer, completions: Completions, masked: Tensor | None) -> Tensor:
        if masked is None:
            masked = torch.zeros_like(completions.prompt)
        if self.estimator == "coupled":
            return coupled_token_log_probs(model, completions, masked, self.mask_id)
        return d1_token_log_probs(model, completions, masked, self.mask_id)
