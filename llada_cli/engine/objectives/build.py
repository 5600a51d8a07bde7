"""The training objectives: AR and diffusion, for pretraining and SFT (docs/algorithms.md sections 2-6).

Each objective is a small dataclass called as `objective(model, batch, generator, progress)`;
`progress` = step / total steps (the diffusion schedules read it). They live in ar.py,
diffusion_pretraining.py and diffusion_sft.py, the pieces they share in losses.py and masking.py;
`make_objective` builds the one a config asks for.
"""

from __future__ import annotations

from dataclasses import fields

from ..model.transformer import Transformer
from ..objective_configs import (
    ARDPOConfig,
    ARPretrainConfig,
    ARSFTConfig,
    DiffusionDPOConfig,
    DiffusionPretrainConfig,
    DiffusionSFTConfig,
    ObjectiveConfig,
)
from .ar import ARPretrainObjective, ARSFTObjective
from .diffusion_pretraining import DiffusionPretrainObjective
from .diffusion_sft import DiffusionSFTObjective
from .dpo import ARDPOObjective, DiffusionDPOObjective

TrainingObjective = (
    ARPretrainObjective
    | DiffusionPretrainObjective
    | ARSFTObjective
    | DiffusionSFTObjective
    | ARDPOObjective
    | DiffusionDPOObjective
)


def make_objective(
    config: ObjectiveConfig,
    mask_id: int | None,
    eos_id: int,
    total_steps: int = 1,
    reference: Transformer | None = None,
) -> TrainingObjective:
    """The objective that trains with `config`, given the tokenizer's special ids, the run's length
    and, for DPO, the frozen reference model."""
    options = {f.name: getattr(config, f.name) for f in fields(config)}
    if isinstance(config, ARDPOConfig) and reference is None:
        raise ValueError("DPO needs its reference model")
    if type(config) is ARPretrainConfig:
        return ARPretrainObjective(**options, eos_id=eos_id)
    if type(config) is ARSFTConfig:
        return ARSFTObjective(**options)
    if type(config) is ARDPOConfig and reference is not None:
        return ARDPOObjective(**options, reference=reference)
    if mask_id is None:
        raise ValueError("a diffusion objective needs the mask token: the tokenizer has none")
    if type(config) is DiffusionDPOConfig and reference is not None:
        return DiffusionDPOObjective(**options, reference=reference, mask_id=mask_id)
    if type(config) is DiffusionPretrainConfig:
        return DiffusionPretrainObjective(**options, mask_id=mask_id, eos_id=eos_id, total_steps=total_steps)
    if type(config) is DiffusionSFTConfig:
        return DiffusionSFTObjective(**options, mask_id=mask_id)
    raise KeyError(type(config))
