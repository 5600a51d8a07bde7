"""LR schedules and the WSD block curriculum at their phase boundaries (docs/algorithms.md section 4)."""

import math

import pytest

from llada_cli.engine.errors import UsageError
from llada_cli.engine.schedules import (
    default_block_sizes,
    learning_rate,
    ramped_weight,
    validate_block_sizes,
    warmup_steps,
    wsd_block_size,
    wsd_mask_ratio,
)
from tests.conftest import MICRO

# 100 steps, 10 of warmup: 90 post-warmup steps (10..99)


def lr(step: int, schedule: str, **kwargs) -> float:
    return learning_rate(step, 100, 1.0, schedule, warmup=10, **kwargs)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "wsd"])
def test_linear_warmup_reaches_base_at_its_last_step(schedule):
    assert lr(0, schedule) == pytest.approx(0.1)
    assert lr(4, schedule) == pytest.approx(0.5)
    assert lr(9, schedule) == pytest.approx(1.0)


def test_constant_schedule_stays_at_base():
    assert [lr(s, "constant") for s in (10, 50, 99, 150)] == [1.0] * 4


def test_cosine_decays_to_min_at_the_last_step():
    # post-warmup step j uses decayed fraction (j + 1) / 90
    assert lr(10, "cosine") == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 90)))
    assert lr(54, "cosine") == pytest.approx(0.55)  # (44 + 1) / 90 = half way: halfway in lr too
    assert lr(99, "cosine") == pytest.approx(0.1)
    assert lr(150, "cosine") == pytest.approx(0.1)


def test_wsd_is_stable_then_decays_linearly_to_min():
    # stable: int(0.4 * 90) = 36 steps (10..45); decay: 54 steps (46..99)
    assert lr(10, "wsd") == 1.0
    assert lr(45, "wsd") == 1.0
    assert lr(46, "wsd") == pytest.approx(1.0 - 0.9 / 54)
    assert lr(72, "wsd") == pytest.approx(0.55)  # 27 / 54 of the decay done
    assert lr(99, "wsd") == pytest.approx(0.1)
    assert lr(150, "wsd") == pytest.approx(0.1)


def test_wsd_honours_stable_ratio_and_min_lr_ratio():
    # stable_ratio 0.5 -> 45 stable steps (10..54); min 0.0
    assert lr(54, "wsd", stable_ratio=0.5, min_lr_ratio=0.0) == 1.0
    assert lr(99, "wsd", stable_ratio=0.5, min_lr_ratio=0.0) == pytest.approx(0.0)


def test_warmup_as_long_as_the_run_is_cut_to_a_tenth():
    assert warmup_steps(500, 100) == warmup_steps(100, 100) == 10
    assert warmup_steps(99, 100) == 99 and warmup_steps(0, 100) == 0
    assert warmup_steps(None, 100) == 5 and warmup_steps(None, 10) == 1  # default: 5%, at least 1
    assert learning_rate(9, 100, 1.0, "constant", warmup=10) == pytest.approx(1.0)
    assert learning_rate(0, 100, 1.0, "constant", warmup=0) == 1.0


def test_unknown_lr_schedule_is_a_usage_error():
    with pytest.raises(UsageError, match="`lr_schedule` 'linear' is unknown"):
        lr(20, "linear")


# -- WSD block curriculum ---------------------------------------------------------------------------

UP = (1, 4, 16, 64, 128)
DOWN = (64, 32)


def expected_block(step: int, total: int) -> int:
    """Section 4 at L = 128: warmup 30% in 5 equal shares, stable 50%, decay 20% in 2 shares."""
    share = total * 6 // 100  # 6% of the run per warmup entry
    if step < total * 30 // 100:
        return UP[step // share]
    if step < total * 80 // 100:
        return 128
    return DOWN[0] if step < total * 90 // 100 else DOWN[1]


@pytest.mark.parametrize("total", [100, 1000])
def test_block_size_at_every_step_of_a_run(total):
    got = [wsd_block_size(step, total, 128, UP, DOWN) for step in range(total)]
    assert got == [expected_block(step, total) for step in range(total)]


def test_block_size_phase_boundaries():
    # 100 steps, phases 0.3 / 0.5 / 0.2: warmup 0-29 (5 sizes, 6 steps each), stable 30-79, decay 80-99
    block = lambda s: wsd_block_size(s, 100, 128, UP, DOWN)  # noqa: E731
    assert [block(s) for s in (0, 6, 12, 18, 24)] == [1, 4, 16, 64, 128]
    assert [block(s) for s in (5, 11, 29)] == [1, 4, 128]
    assert [block(s) for s in (30, 50, 79)] == [128, 128, 128]
    assert [block(s) for s in (80, 89, 90, 99, 100)] == [64, 64, 32, 32, 32]


def test_block_size_with_other_ratios_and_empty_lists():
    phases = (0.1, 0.2, 0.7)  # of 100 steps: warmup 0-9, stable 10-29, decay 30-99
    assert wsd_block_size(5, 100, 64, (1, 64), (32,), phases) == 64
    assert wsd_block_size(25, 100, 64, (1, 64), (32,), phases) == 64
    assert wsd_block_size(30, 100, 64, (1, 64), (32,), phases) == 32
    assert [wsd_block_size(s, 10, 64, (1, 2), (32,), (2, 4, 4)) for s in (0, 1, 2)] == [1, 2, 64]  # 0.2 of 10
    assert wsd_block_size(10, 100, 64, (), ()) == 64
    assert wsd_block_size(90, 100, 64, (), ()) == 64
    assert wsd_block_size(0, 100, 64, (8,), (8,), (0.0, 1.0, 0.0)) == 64


def test_wsd_mask_ratio_at_its_phase_boundaries():
    # Nano-LLaDA's defaults over 100 steps: 0.15 -> 1.0 over steps 0-19, 1.0 for 20-79, back to 0.15 at 99
    ratio = lambda s: wsd_mask_ratio(s, 100, 0.15, 1.0, 0.2, 0.6)  # noqa: E731
    assert ratio(0) == pytest.approx(0.15 + 0.85 / 20)
    assert ratio(9) == pytest.approx(0.15 + 0.85 * 10 / 20)
    assert ratio(19) == pytest.approx(1.0)
    assert ratio(20) == ratio(79) == 1.0
    assert ratio(80) == pytest.approx(1.0 - 0.85 / 20)
    assert ratio(99) == pytest.approx(0.15)
    assert wsd_mask_ratio(5, 10, 0.3, 0.6, 0.0, 1.0) == 0.6  # no warmup, all stable
    assert wsd_mask_ratio(9, 10, 0.3, 0.6, 0.5, 0.5) == 0.6  # no decay phase


def test_ramped_weight_waits_then_rises():
    assert [ramped_weight(s, 0.4, 2, 4) for s in (0, 1, 2, 3, 5, 9)] == pytest.approx(
        [0, 0, 0.1, 0.2, 0.4, 0.4]
    )
    assert ramped_weight(0, 0.4, 0, 0) == 0.4 and ramped_weight(7, 0.0, 0, 0) == 0


@pytest.mark.parametrize(
    ("seq_len", "up", "down"),
    [
        (512, (1, 4, 16, 64, 512), (256, 128, 64, 32)),
        (256, (1, 4, 16, 64, 256), (128, 64, 32)),
        (128, (1, 4, 16, 64, 128), (64, 32)),
        (64, (1, 4, 16, 64), (32,)),
        (32, (1, 4, 16, 32), (16,)),
        (48, (1, 4, 16, 48), (24,)),
        (6, (1, 6), (3,)),
        (7, (1, 7), (1,)),
        (2, (1, 2), (1,)),
    ],
)
def test_default_block_sizes(seq_len, up, down):
    assert default_block_sizes(seq_len) == (up, down)
    validate_block_sizes(up, seq_len, "--block-sizes-up")
    validate_block_sizes(down, seq_len, "--block-sizes-down")


def test_a_non_divisor_block_size_is_a_clear_usage_error():
    with pytest.raises(UsageError) as error:
        validate_block_sizes([1, 48, 128], 128, "block_sizes_up")
    assert str(error.value) == (
        "`block_sizes_up`: 48 does not divide `seq_len` 128; use divisors such as 1, 2, 4, ..., 128"
    )


def test_zero_and_empty_block_size_lists_are_usage_errors():
    with pytest.raises(UsageError, match="0 does not divide `seq_len` 6; use divisors such as 1, 2, 3, 6"):
        validate_block_sizes([0], 6, "block_sizes_down")
    with pytest.raises(UsageError, match="at least one"):
        validate_block_sizes([], 6, "block_sizes_down")


def test_block_curriculum_logs_block_size_and_validates_sizes(cli):
    args = ["pretrain", "diffusion", *MICRO, "--use-block-curriculum", "--max-steps", "10"]
    bad = cli(*args, "--block-sizes-up", "1,48,64", "--run-name", "bad")
    assert bad.exit_code == 2 and "48 does not divide --seq-len 64" in bad.stderr
    assert not (cli.home / "runs/bad").exists()
    cli.ok(
        *args,
        "--block-sizes-up",
        "1,8,64",
        "--wsd-block-sizes-down",
        "32,16",
        "--use-doc-attention-mask",
        "--time-weighted-loss",
        "--noise-schedule",
        "cosine",
        "--run-name",
        "wsd",
    )
    sizes = [m["block_size"] for m in cli.metrics("wsd")]
    # warmup 30% over (1, 8, 64), stable 50% at 64, decay 20% over (32, 16); step s trains at s/10
    assert sizes == [1.0, 8.0, 64.0, 64.0, 64.0, 64.0, 64.0, 64.0, 32.0, 16.0]
