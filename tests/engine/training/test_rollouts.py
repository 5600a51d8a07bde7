"""GRPO's rollouts (training/rollouts.py): the rows laid out from sampled answers and the rewards."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from llada_cli.engine.objective_configs import ARGRPOConfig
from llada_cli.engine.sampling.common import Generation
from llada_cli.engine.training.rollouts import Rollout

EOS, IM_END = 0, 1


def generation(ids: list[int], finished: bool) -> Generation:
    return Generation(token_ids=ids, forward_passes=1, steps=1, seconds=0.0, finished=finished)


def test_rows_hold_the_prompt_the_answer_its_stop_and_for_diffusion_the_eos_fill():
    tokenizer = SimpleNamespace(eos_id=EOS, im_end_id=IM_END)
    prompts = [[5, 6, 7], [5, 6]]
    answers = [generation([8, 9], finished=True), generation([8, 9, 10, 11], finished=False)]
    for kind, fill in (("ar", 0), ("diffusion", 1)):
        rollout = Rollout(kind, tokenizer, ["x"], ARGRPOConfig(gen_length=4))
        c = rollout.rows(prompts, answers, torch.tensor([1.0, 0.0]))
        row0 = [5, 6, 7, 8, 9, IM_END] + [EOS] * fill
        assert c.input_ids[0, : len(row0)].tolist() == row0
        assert c.input_ids[1, :6].tolist() == [5, 6, 8, 9, 10, 11]  # unfinished: no stop token
        assert c.prompt[0].tolist()[:4] == [True, True, True, False]
        assert c.completion.sum(dim=1).tolist() == [3, 4]  # the answer and the stop that ended it
        assert c.region.sum(dim=1).tolist() == [3 + fill, 4]
        assert (~c.pad).sum(dim=1).tolist() == [6 + fill, 6]
        assert c.rewards.tolist() == [1.0, 0.0]
