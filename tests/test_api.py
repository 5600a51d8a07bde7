"""The Python API (llada_cli/api.py): train a run, merge checkpoints, load, generate, logits and scores."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from llada_cli import api
from llada_cli.engine.errors import UsageError
from tests.conftest import MICRO


def test_api_generate_logits_and_score(pipeline):
    ar = api.load("ar-chat", home=pipeline.home, device="cpu")
    dlm = api.load("dlm-chat", home=pipeline.home, device="cpu")
    assert (ar.kind, dlm.kind) == ("ar", "diffusion")
    [result] = dlm.generate("Hi", chat=True, gen_length=8, steps=8)
    assert (
        result.forward_passes <= 8 and result.tokens_per_forward == result.new_tokens / result.forward_passes
    )
    ids = torch.tensor([ar.tokenizer.encode("The capital")])
    assert ar.logits(ids).shape == (1, ids.shape[1], ar.network.config.vocab_size)
    # exact AR log-likelihood = sum of next-token log-probabilities
    prompt, answer = ar.tokenizer.encode("The capital"), ar.tokenizer.encode(" is")
    full = torch.tensor([prompt + answer])
    logprobs = ar.logits(full[:, :-1]).log_softmax(-1)[0, len(prompt) - 1 :]
    expected = logprobs.gather(1, full[0, len(prompt) :, None]).sum().item()
    assert abs(ar.score("The capital", " is") - expected) < 1e-4
    assert dlm.score("The capital", " is", mc_num=8) < 0


# conftest's MICRO as keywords
TINY = dict(
    preset="tiny",
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    seq_len=64,
    vocab_size=512,
    batch_size=4,
    log_every=1,
    dtype="fp32",
)
MICRO_FP32 = [*MICRO, "--dtype", "fp32"]
STEP3 = "checkpoints/step-0000003/model.safetensors"


def test_train_gives_the_weights_the_command_gives(cli):
    cli.ok("pretrain", "ar", *MICRO_FP32, "--max-steps", "3", "--run-name", "by-cli")
    folder = api.train("pretrain ar", "by-api", home=cli.home, max_steps=3, **TINY)
    assert folder == cli.home / "runs" / "by-api"
    by_cli, by_api = load_file(cli.home / "runs/by-cli" / STEP3), load_file(folder / STEP3)
    assert by_cli.keys() == by_api.keys()
    assert all(by_cli[name].equal(by_api[name]) for name in by_cli)
    info = json.loads((folder / "run.json").read_text())
    assert (info["kind"], info["stage"], info["status"], info["step"]) == ("ar", "pretrain", "completed", 3)
    assert info["command"] == ["llada.api.train", "pretrain ar"]


def test_merge_writes_the_weights_the_command_writes(cli):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "3", "--save-every", "1", "--run-name", "r")
    cli.ok("runs", "merge", "r@2", "r", "--name", "by-cli")
    folder = api.merge(["r@2", "r"], "by-api", home=cli.home)
    assert folder == cli.home / "runs" / "by-api"
    by_cli, by_api = load_file(cli.home / "runs/by-cli" / STEP3), load_file(folder / STEP3)
    assert by_cli.keys() == by_api.keys() and all(by_cli[name].equal(by_api[name]) for name in by_cli)
    assert json.loads((folder / "run.json").read_text())["command"] == ["llada.api.merge", "r@2", "r"]
    [answer] = api.load("by-api", home=cli.home, device="cpu").generate("Hi", max_new_tokens=3)
    assert answer.new_tokens <= 3


def test_train_continues_as_diffusion_and_fine_tunes_with_events(cli):
    api.train("pretrain ar", "ar", home=cli.home, max_steps=2, **TINY)
    events = []
    api.train(
        "pretrain diffusion", "dlm", init_from="ar", home=cli.home, max_steps=2, on_event=events.append,
        batch_size=4, log_every=1, dtype="fp32",
    )  # fmt: skip
    assert [e.kind for e in events if e.kind != "prepare"][0] == "start"
    assert events[-1].kind == "end" and events[-1].record["status"] == "completed"
    chat = api.train("sft", "dlm-chat", base="dlm", home=cli.home, max_steps=2, batch_size=4, dtype="fp32")
    info = json.loads((chat / "run.json").read_text())
    assert (info["kind"], info["stage"], info["parent"]) == ("diffusion", "sft", "dlm@2")
    assert api.load("dlm-chat", home=cli.home).kind == "diffusion"


@pytest.mark.parametrize(
    ("command", "keywords", "words"),
    [
        ("pretrain gpt", {}, "command 'pretrain gpt' is unknown"),
        ("pretrain ar", {"max_step": 3}, "'max_step' is not an option.*did you mean max_steps"),
        ("pretrain ar", {"init_from": "x"}, "is an option of pretrain diffusion"),
        ("pretrain ar", {"learning_rate": -1.0}, "must be at least 0"),
        # options that could have no effect, or a context that cannot hold a training row
        ("pretrain diffusion", {"init_from": "ar", "preset": "tiny"}, "`preset`: a run that starts from"),
        ("pretrain ar", {"seq_len": 64, "max_position_embeddings": 32}, "`max_position_embeddings` 32 is"),
        ("pretrain diffusion", {"wsd_block_sizes_up": (4, 8)}, "only with `use_block_curriculum`"),
        ("pretrain diffusion", {"wsd_max_mask_ratio": 0.9}, "only with `mask_schedule` wsd"),
        ("pretrain diffusion", {"repeat_penalty_min_run": 3}, "only with a `repeat_penalty_weight` above 0"),
        ("sft", {"base": "x", "pad_policy": "eos", "pad_tokens": 4}, "only with `pad_policy` capped"),
    ],
)  # fmt: skip
def test_train_refuses_what_the_command_refuses(cli, command, keywords, words):
    with pytest.raises(UsageError, match=words):
        api.train(command, "bad", home=cli.home, **keywords)
    assert not (cli.home / "runs" / "bad").exists()


def test_load_and_generate_refuse_what_has_no_effect(pipeline):
    with pytest.raises(UsageError, match="`seq_len` is for a checkpoint file.*run 'ar-base' records its own"):
        api.load("ar-base", home=pipeline.home, seq_len=32)
    tokenizer = pipeline.home / "runs" / "ar-base" / "tokenizer.json"
    with pytest.raises(UsageError, match="run 'ar-base' brings its own tokenizer"):
        api.load("ar-base", home=pipeline.home, tokenizer=tokenizer)
    model = api.load("ar-chat", home=pipeline.home)
    with pytest.raises(UsageError, match="`system` is a message of the chat template"):
        model.generate("hi", system="Be brief.", max_new_tokens=2)
    assert model.generate("hi", chat=True, system="Be brief.", max_new_tokens=2)[0].new_tokens <= 2
