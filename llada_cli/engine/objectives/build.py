"""The training objectives: AR and diffusion, for pretraining and SFT (docs/algorithms.md sections 2-6).

Each objective is a small dataclass called as `objective(model, batch, generator, progress)`;
`progress` = step / total steps (the diffusion schedules read it). They live in ar.py,
diffusion_pretraining.py and diffusion_sft.py, the pieces they share in losses.py and masking.py;
`make_objective` builds the one a config asks for.
"""

from __future__ import annotations

from dataclasses import fields

from ..objective_configs import ARPretrainConfig, ARSFTConfig, DiffusionPretrainConfig, DiffusionSFTConfig
from .ar import ARPretrainObjective, ARSFTObjective
from .diffusion_pretraining import DiffusionPretrainObjective
from .diffusion_sft import DiffusionSFTObjective

_OBJECTIVES: dict[type, type] = {
    ARPretrainConfig: ARPretrainObjective,
    DiffusionPretrainConfig: DiffusionPretrainObjective,
    ARSFTConfig: ARSFTObjective,
    DiffusionSFTConfig: DiffusionSFTObjective,
}


def make_objective(config: object, mask_id: int | None, eos_id: int, total_steps: int = 1):
    """The objective that trains with `config`, given the tokenizer's special ids and the run's length."""
    cls = _OBJECTIVES[type(config)]
    ids = {"mask_id": mask_id, "eos_id": eos_id, "total_steps": total_steps}
    wanted = {f.name for f in fields(cls)} - {f.name for f in fields(type(config))}
    given = {k: ids[k] for k in wanted if k in ids}
    return cls(**{f.name: getattr(config, f.name) for f in fields(config)}, **given)
