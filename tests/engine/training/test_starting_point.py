"""A run's starting point (training/starting_point.py) and the logit shift of AR-initialised diffusion
models: the state at i - 1 predicts token i.

docs/algorithms.md section 11. The shift is a property of the model (its config); every path that
turns hidden states into logits follows it: training, scoring, sampling with every cache, export.
Its alignment is tested in model/test_transformer.py, sampling with it in sampling/test_logit_shift.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.model.tokenizer import Tokenizer
from llada_cli.engine.model.transformer import Transformer
from llada_cli.engine.objectives.losses import plain_cross_entropy
from llada_cli.engine.objectives.masking import apply_mask
from llada_cli.engine.runs.record import RunInfo
from llada_cli.engine.training.starting_point import Parent, continued_as_diffusion


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
