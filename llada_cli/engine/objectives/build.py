"""The training objectives: AR and diffusion, for pretraining, SFT, DPO and GRPO (docs/algorithms.md).

Each objective is a small dataclass called as `objective(model, batch, generator, progress)`;
`progress` = step / total steps (the diffusion schedules read it). They live in ar.py,
diffusion_pretraining.py, diffusion_sft.py, dpo.py and grpo.py, the pieces they share in
losses.py and masking.py; `make_objective` builds the one a config asks for.
"""

from __future__ import annotations

from dataclasses import fields

from ..model.transformer import Transformer
from ..objective_configs import (
    ARDPOConfig,
    ARGRPOConfig,
    ARPretrainConfig,
    ARSFTConfig,
    DiffusionDPOConfig,
    DiffusionGRPOConfig,
    DiffusionPretrainConfig,
    DiffusionSFTConfig,
    ObjectiveConfig,
)
from .ar import ARPretrainObjective, ARSFTObjective
from .diffusion_pretraining import DiffusionPretrainObjective
from .diffusion_sft import DiffusionSFTObjective
from .dpo import ARDPOObjective, DiffusionDPOObjective
from .grpo import ARGRPOObjective, DiffusionGRPOObjective, Rollout

TrainingObjective = (
    ARPretrainObjective
    | DiffusionPretrainObjective
    | ARSFTObjective
    | DiffusionSFTObjective
    | ARDPOObjective
    | DiffusionDPOObjective
    | ARGRPOObjective
    | DiffusionGRPOObjective
)


def make_objective(
    config: ObjectiveConfig,
    mask_id: int | None,
    eos_id: int,
    total_steps: int = 1,
    reference: Transformer | None = None,
    rollout: Rollout | None = None,
    micro_batches: int = 1,
) -> TrainingObjective:
    """The objective that trains with `config`, given the tokenizer's special ids, the run's length,
    for DPO and GRPO the frozen reference model, and for GRPO its rollouts and the micro-batches
    of an optimizer step."""
    options = {f.name: getattr(config, f.name) for f in fields(config)}
    if isinstance(config, (ARDPOConfig, ARGRPOConfig)) and reference is None:
        raise ValueError("DPO and GRPO need their reference model")
    if isinstance(config, ARGRPOConfig) and rollout is None:
        raise ValueError("GRPO needs its rollouts")
    if type(config) is ARPretrainConfig:
        return ARPretrainObjective(**options, eos_id=eos_id)
    if type(config) is ARSFTConfig:
        return ARSFTObjective(**options)
    if type(config) is ARDPOConfig and reference is not None:
        return ARDPOObjective(**options, reference=reference)
    if type(config) is ARGRPOConfig and reference is not None and rollout is not None:
        return ARGRPOObjective(**options, reference=reference, rollout=rollout, micro_batches=micro_batches)
    if mask_id is None:
        raise ValueError("a diffusion objective needs the mask token: the tokenizer has none")
    if type(config) is DiffusionDPOConfig and reference is not None:
        return DiffusionDPOObjective(**options, reference=reference, mask_id=mask_id)
    if type(config) is DiffusionGRPOConfig and reference is not None and rollout is not None:
        return DiffusionGRPOObjective(
            **options, reference=reference, rollout=rollout, micro_batches=micro_batches, mask_id=mask_id
        )
    if type(config) is DiffusionPretrainConfig:
        return DiffusionPretrainObjective(**options, mask_id=mask_id, eos_id=eos_id, total_steps=total_steps)
    if type(config) is DiffusionSFTConfig:
        return DiffusionSFTObjective(**options, mask_id=mask_id)
    raise KeyError(type(config))
