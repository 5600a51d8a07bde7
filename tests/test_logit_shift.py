"""The logit shift of AR-initialised diffusion models: the state at i - 1 predicts token i.

docs/algorithms.md section 11. The shift is a property of the model (its config); every path that
turns hidden states into logits follows it: training, scoring, sampling with every cache, export.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.model.tokenizer import Tokenizer
from llada_cli.engine.model.transformer import Transformer, aligned
from llada_cli.engine.objectives.losses import plain_cross_entropy
from llada_cli.engine.objectives.masking import apply_mask
from llada_cli.engine.runs.record import RunInfo
from llada_cli.engine.sampling.diffusion import DiffusionSettings, generate_diffusion
from llada_cli.engine.training.starting_point import Parent, continued_as_diffusion

MASK = 47


def test_aligned_by_hand() -> None:
    hidden = torch.arange(6.0).view(1, 3, 2)  # columns (0, 1), (2, 3), (4, 5)
    shifted = ModelConfig(vocab_size=8, hidden_size=2, num_attention_heads=1, logit_shift=True)
    assert aligned(hidden, shifted).tolist() == [[[0, 1], [0, 1], [2, 3]]]  # column 0 reads itself
    before = torch.tensor([[[9.0, 9.0]]])
    assert aligned(hidden, shifted, before).tolist() == [[[9, 9], [0, 1], [2, 3]]]
    assert aligned(hidden, replace(shifted, logit_shift=False)).tolist() == hidden.tolist()


@pytest.fixture(scope="module")
def ar_parent() -> Parent:
    torch.manual_seed(0)
    tokenizer = Tokenizer.train(["the capital of ninaria is tidar."] * 10, vocab_size=300)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        seq_len=32,
    )
    return Parent("ar", "ar", Transformer(config).eval(), tokenizer)


@torch.no_grad()
def test_a_shifted_init_predicts_each_masked_token_as_the_ar_model_did(ar_parent: Parent) -> None:
    """Mask rate -> 0 (one masked token at a time) under the attention the AR weights were trained
    with: the diffusion loss at each position is the AR model's next-token loss on the same tokens
    (over the AR vocabulary: <|mask|> is a row the AR model did not have)."""
    vocab = ar_parent.tokenizer.vocab_size
    model, tokenizer = continued_as_diffusion(ar_parent, logit_shift=True)
    assert model.config.logit_shift and tokenizer.mask_id == vocab == model.config.vocab_size - 1
    causal = Transformer(replace(model.config, causal=True))
    causal.load_state_dict(model.state_dict())
    x0 = torch.randint(3, vocab, (2, 12), generator=torch.Generator().manual_seed(1))
    ar_ce = F.cross_entropy(ar_parent.model(x0[:, :-1]).transpose(1, 2), x0[:, 1:], reduction="none")
    for column in range(1, 12):
        masked = torch.zeros_like(x0, dtype=torch.bool)
        masked[:, column] = True
        xt = apply_mask(x0, masked, tokenizer.mask_id)
        logits = causal(xt)[:, column, :vocab]
        diffusion_ce = F.cross_entropy(logits, x0[:, column], reduction="none")
        torch.testing.assert_close(diffusion_ce, ar_ce[:, column - 1], atol=1e-5, rtol=1e-5)
    # the loss the objectives compute reads the same states: only the mask's own logit differs
    masked = torch.zeros_like(x0, dtype=torch.bool)
    masked[:, 5] = True
    full = plain_cross_entropy(causal, x0, apply_mask(x0, masked, tokenizer.mask_id), masked, None)
    assert (full >= ar_ce[:, 4] - 1e-5).all()
    unshifted, _ = continued_as_diffusion(ar_parent, logit_shift=False)
    assert not unshifted.config.logit_shift


@pytest.fixture(scope="module")
def shifted() -> Transformer:
    torch.manual_seed(3)
    config = ModelConfig(
        vocab_size=48, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, seq_len=64, causal=False
    )
    return Transformer(replace(config, logit_shift=True)).eval()


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_shifted_caches_are_exact_when_never_read(shifted: Transformer, cache: str) -> None:
    prompts = [[3, 4, 5, 6, 7], [8, 9]]
    settings = dict(gen_length=16, block_length=4, steps=4)
    plain = generate_diffusion(shifted, prompts, DiffusionSettings(**settings), MASK, set())
    cached = generate_diffusion(shifted, prompts, DiffusionSettings(cache=cache, **settings), MASK, set())
    assert [g.token_ids for g in cached] == [g.token_ids for g in plain]


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_a_shifted_block_reads_the_column_before_it_in_every_cached_step(
    shifted: Transformer, cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Later steps of a block do not run the column before it: its state comes from the block's
    first pass, so the first slot's logits never change within a block."""
    from llada_cli.engine.sampling import cache as cache_module

    first_slot = []
    original = cache_module.run_model

    def spy(model, ids, positions, past, mask, window, before=None):
        logits, kv, hidden = original(model, ids, positions, past, mask, window, before)
        first_slot.append((past is not None, logits[:, 0].clone()))
        return logits, kv, hidden

    monkeypatch.setattr(cache_module, "run_model", spy)
    settings = DiffusionSettings(gen_length=4, block_length=4, steps=4, cache=cache)
    generate_diffusion(shifted, [[3, 4, 5, 6, 7]], settings, MASK, set())
    assert [read for read, _ in first_slot] == [False, True, True, True]
    for _, logits in first_slot[1:]:
        torch.testing.assert_close(logits, first_slot[0][1])


class MaskLover(torch.nn.Module):
    """Logits whose largest is always <|mask|>'s, then token 5's."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig(vocab_size=48, hidden_size=2, num_attention_heads=1, causal=False)
        self.lm_head = torch.nn.Identity()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def hidden_states(self, ids, positions, attn_mask, past):
        logits = torch.zeros(*ids.shape, 48)
        logits[..., MASK], logits[..., 5] = 9.0, 3.0
        return logits, []


def test_the_mask_is_never_committed() -> None:
    model = MaskLover()
    for options in ({"exact": True}, {"threshold": 0.01}, {"threshold": 0.01, "edit_threshold": 0.0}):
        (got,) = generate_diffusion(
            model, [[3, 4]], DiffusionSettings(gen_length=8, block_length=8, **options), MASK, set()
        )
        assert got.token_ids == [5] * 8, options


def test_the_shift_is_recorded_inherited_and_exported(pipeline, cli, tmp_path) -> None:
    def shift_of(home, run: str) -> bool:
        return RunInfo.load(home / "runs" / run / "run.json").model.logit_shift

    assert shift_of(pipeline.home, "dlm-base") and shift_of(pipeline.home, "dlm-chat")  # SFT inherits it
    assert not shift_of(pipeline.home, "ar-base")
    out = tmp_path / "hf"
    pipeline.ok("export", "dlm-chat", str(out))
    assert json.loads((out / "config.json").read_text())["llada"]["logit_shift"] is True
    cli.ok("runs", "import", str(out), "--name", "dlm-back")  # another registry: the pipeline's is shared
    assert shift_of(cli.home, "dlm-back")
    ask = ["--chat", "-p", "Which city is the capital of Ninaria?", "--gen-length", "8", "--json"]
    answers = [
        json.loads(c.ok("sample", run, *ask).stdout) for c, run in ((pipeline, "dlm-chat"), (cli, "dlm-back"))
    ]
    assert answers[0]["results"][0]["token_ids"] == answers[1]["results"][0]["token_ids"]


def test_no_logit_shift_and_scratch_runs_are_unshifted(cli) -> None:
    from tests.conftest import MICRO

    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "2", "--run-name", "ar")
    cli.ok(
        "pretrain", "diffusion", "--init-from", "ar", "--no-logit-shift", "--max-steps", "2", "-n", "plain"
    )
    cli.ok("pretrain", "diffusion", *MICRO, "--max-steps", "2", "--run-name", "scratch")
    cli.ok(
        "pretrain", "diffusion", *MICRO, "--logit-shift", "--max-steps", "2", "--run-name", "scratch-shift"
    )
    shifts = {
        run: RunInfo.load(cli.home / "runs" / run / "run.json").model.logit_shift
        for run in ("plain", "scratch", "scratch-shift")
    }
    assert shifts == {"plain": False, "scratch": False, "scratch-shift": True}
    result = cli("pretrain", "ar", *MICRO, "--logit-shift", "--max-steps", "2", "--run-name", "ar2")
    assert result.exit_code == 2
