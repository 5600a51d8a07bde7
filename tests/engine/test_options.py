"""Options declared once (engine/options.py): the engine checks them by field, its choices are the
registries' keys, and it spells no flag. How the CLI shows them as flags: cli/test_options.py."""

from __future__ import annotations

import math

import pytest
import torch.nn.functional as F

from llada_cli.engine.config import DataConfig, ModelConfig, TrainConfig
from llada_cli.engine.errors import UsageError
from llada_cli.engine.objective_configs import DiffusionSFTConfig
from llada_cli.engine.objectives.diffusion_pretraining import MASK_SCHEDULES, DiffusionPretrainConfig
from llada_cli.engine.objectives.masking import NOISE_SCHEDULES
from llada_cli.engine.options import option_fields
from llada_cli.engine.run_options import CheckpointFileOptions, RunOptions, StartOptions
from llada_cli.engine.sampling.cache import CACHES
from llada_cli.engine.sampling.remasking import REMASKING
from llada_cli.engine.sampling.settings import ARSettings, DiffusionSettings
from llada_cli.engine.schedules import LR_SCHEDULES
from tests.conftest import ROOT

ENGINE = ROOT / "llada_cli" / "engine"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TrainConfig(grad_accum=0), "`grad_accum` must be at least 1, got 0"),
        (lambda: TrainConfig(learning_rate=math.nan), "`learning_rate` must be a finite number, got nan"),
        (
            lambda: TrainConfig(lr_schedule="linear"),
            "`lr_schedule` 'linear' is unknown: use one of cosine, wsd",
        ),
        (lambda: TrainConfig(grad_accum=2, global_batch_size=8), "`global_batch_size` sets `grad_accum`"),
        (lambda: DiffusionPretrainConfig(iid_mask_eps=1.0), "`iid_mask_eps` must be less than 1, got 1"),
        (lambda: DiffusionSettings(gen_length=0), "`gen_length` must be at least 1, got 0"),
        (lambda: RunOptions(run_name="x", devices=0), "`devices` must be at least 1, got 0"),
        (lambda: TrainConfig(global_batch_size=0), "`global_batch_size` must be at least 1, got 0"),
        (
            lambda: StartOptions(tokenizer_sample_mb=math.nan),
            "`tokenizer_sample_mb` must be a finite number, got nan",
        ),
        (lambda: StartOptions(max_position_embeddings=1), "`max_position_embeddings` must be at least 2"),
        (lambda: CheckpointFileOptions(seq_len=1), "`seq_len` must be at least 2, got 1"),
        (lambda: ModelConfig(dropout=1.0), "`dropout` must be less than 1, got 1"),
        (lambda: ModelConfig(hidden_act="tanh"), "`hidden_act` 'tanh' is unknown"),
        (lambda: DiffusionPretrainConfig(wsd_min_mask_ratio=0.0), "`wsd_min_mask_ratio` must be more than 0"),
        (lambda: DiffusionPretrainConfig(wsd_min_mask_ratio=0.9, wsd_max_mask_ratio=0.5), "must not exceed"),
        (lambda: DiffusionPretrainConfig(wsd_warmup_ratio=0.5, wsd_stable_ratio=0.6), "must be at most 1"),
        (lambda: DiffusionPretrainConfig(wsd_phase_ratios=(0.5, -0.1, 0.6)), "three shares >= 0"),
        (
            lambda: DiffusionPretrainConfig(repeat_penalty_weight=-1.0),
            "`repeat_penalty_weight` must be at least 0",
        ),
        (
            lambda: DiffusionPretrainConfig(repeat_penalty_min_run=1),
            "`repeat_penalty_min_run` must be at least 2",
        ),
        (lambda: DiffusionSettings(cap_start_ratio=0.0), "`cap_start_ratio` must be more than 0"),
        (lambda: DiffusionSettings(max_decode_per_step=-1), "`max_decode_per_step` must be at least 0"),
        (
            lambda: DiffusionSettings(repeat_penalty=math.nan),
            "`repeat_penalty` must be a finite number, got nan",
        ),
        (lambda: ARSettings(top_k=-1), "`top_k` must be at least 0, got -1"),
        # an integer holds what torch can: 64 bits (a seed, a size, a count, a list's numbers)
        (lambda: TrainConfig(seed=2**63), "`seed` 9223372036854775808 does not fit in 64 bits"),
        (lambda: TrainConfig(seed=-(2**63) - 1), "`seed` -9223372036854775809 does not fit in 64 bits"),
        (lambda: TrainConfig(max_steps=10**30), f"`max_steps` {10**30} does not fit in 64 bits"),
        (
            lambda: DiffusionPretrainConfig(use_block_curriculum=True, wsd_block_sizes_up=(4, 2**64)),
            "`wsd_block_sizes_up` 18446744073709551616 does not fit in 64 bits",
        ),
    ],
)
def test_the_engine_refuses_bad_values_naming_the_field(make, message):
    with pytest.raises(UsageError, match=message):
        make()


CONFIG_CLASSES = [
    ModelConfig, TrainConfig, DataConfig, RunOptions, StartOptions, CheckpointFileOptions,
    DiffusionPretrainConfig, DiffusionSFTConfig, ARSettings, DiffusionSettings,
]  # fmt: skip


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda cls: cls.__name__)
def test_every_config_class_refuses_what_its_options_forbid_when_built(cls):
    """The CLI, the API, --config files and resumed runs meet the same checks: the class's own."""
    required = {"run_name": "x"} if cls is RunOptions else {}
    checked = 0
    for field, spec in option_fields(cls):
        bounded = any(b is not None for b in (spec.at_least, spec.above, spec.at_most, spec.below))
        if spec.choices is None and not bounded:
            continue
        bad = "no-such-choice" if spec.choices is not None else math.nan
        with pytest.raises(UsageError, match=f"`{field.name}`"):
            cls(**required, **{field.name: bad})
        checked += 1
    assert checked > 0


def test_the_widest_64_bit_integers_are_accepted():
    assert TrainConfig(seed=2**63 - 1).seed == 2**63 - 1
    assert TrainConfig(seed=-(2**63)).seed == -(2**63)


def test_choices_are_the_keys_of_the_registries():
    specs = {f.name: spec for f, spec in option_fields(TrainConfig)}
    assert specs["lr_schedule"].choices == tuple(LR_SCHEDULES)
    specs = {f.name: spec for f, spec in option_fields(DiffusionPretrainConfig)}
    assert specs["mask_schedule"].choices == tuple(MASK_SCHEDULES)
    assert specs["noise_schedule"].choices == tuple(NOISE_SCHEDULES)
    specs = {f.name: spec for f, spec in option_fields(DiffusionSettings)}
    assert specs["remasking"].choices == tuple(REMASKING)
    assert specs["cache"].choices == tuple(CACHES)
    specs = {f.name: spec for f, spec in option_fields(ModelConfig)}
    assert all(callable(getattr(F, name, None)) for name in specs["hidden_act"].choices)


def test_the_engine_spells_no_flag():
    for path in ENGINE.rglob("*.py"):
        text = path.read_text()
        assert '"--' not in text and "'--" not in text, path
