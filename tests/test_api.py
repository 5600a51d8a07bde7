"""The Python API (llada_cli/api.py): load a run, generate, logits and scores."""

from __future__ import annotations

import torch

from llada_cli import api


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
