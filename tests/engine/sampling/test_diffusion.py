"""Diffusion sampling: exact against LLaDA's reference loop; settings, threshold, cache, editing, batches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llada_cli.engine.config import ModelConfig
from llada_cli.engine.errors import UsageError
from llada_cli.engine.model.transformer import KV, Transformer
from llada_cli.engine.sampling.common import self_attention_mask
from llada_cli.engine.sampling.diffusion import (
    DiffusionSettings,
    cap_budget,
    generate_diffusion,
    penalize_recent,
    propose,
    resolve_settings,
    threshold_mask,
    top_k_mask,
    transfer_schedule,
)

MASK, EOS = 63, 62
PROMPT = [40, 41, 42, 43, 44, 45, 46, 47]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def counting_batch(rows: int, generator: torch.Generator, length: int = 24) -> torch.Tensor:
    """start, start + 1, ... (mod 60) for 14 to 24 tokens, then EOS."""
    start = torch.randint(0, 60, (rows, 1), generator=generator)
    count = torch.randint(14, 25, (rows, 1), generator=generator)
    column = torch.arange(length)[None, :]
    return torch.where(column < count, (start + column) % 60, EOS)


@pytest.fixture(scope="module")
def model() -> Transformer:
    """A tiny bidirectional model, trained briefly on a counting task so its logits mean something."""
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, seq_len=64, causal=False
    )
    net = Transformer(config)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(120):
        clean = counting_batch(32, generator)
        t = torch.rand(32, 1, generator=generator) * 0.999 + 0.001
        masked = torch.rand(clean.shape, generator=generator) < t
        logits = net(torch.where(masked, MASK, clean))
        loss = F.cross_entropy(logits.transpose(1, 2), clean, reduction="none")
        loss = (loss * masked / t).sum() / clean.numel()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


class CountingOracle(nn.Module):
    """A stand-in model whose logits follow a fixed rule with wide margins, so no float rounding matters.

    At position p of a row whose first token is f, the count is n = f + p, and it proposes:
    - EOS once n reaches END, with probability 0.9 (the count is over);
    - n + 1 (a wrong guess) with probability 0.4 while position p - 1 is masked;
    - n otherwise, with probability 0.95 once position p + 1 holds a token, else 0.75.
    Every probability is lowered by 0.005 * p so no two columns tie. It reads the row only through
    its keys/values (token, position) under the attention mask, as attention does, so left padding
    and the prefix/dual KV cache see exactly what a real model would.
    """

    END = 56

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig(vocab_size=64, seq_len=64, causal=False)
        self.anchor = nn.Parameter(torch.zeros(()))  # the samplers read the device from parameters()
        self.lm_head = nn.Identity()  # hidden_states already returns the logits

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.hidden_states(ids, torch.arange(ids.shape[1]), None, None)[0]

    def hidden_states(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        attn_mask: torch.Tensor | None,
        past: list[KV] | None,
    ) -> tuple[torch.Tensor, list[KV]]:
        rows, width = ids.shape
        positions = positions.expand(rows, width)
        kv = torch.stack((ids, positions), dim=-1).double()[:, None]  # (R, 1 head, Q, 2)
        keys = kv if past is None else torch.cat((past[0][0], kv), dim=2)
        key_ids, key_positions = keys[:, 0, :, 0].long(), keys[:, 0, :, 1].long()
        visible = torch.ones(rows, width, keys.shape[2], dtype=torch.bool)
        if attn_mask is not None:  # (R, 1, Q, K) on a full pass, (R, 1, 1, K) with a cache
            visible = attn_mask[:, 0].expand_as(visible)

        def token_at(target: torch.Tensor) -> torch.Tensor:
            """(R, Q) the visible token at each target position; -1 where there is none."""
            hit = visible & (key_positions[:, None, :] == target[:, :, None])
            return torch.where(hit.any(dim=-1), (hit * key_ids[:, None, :]).sum(dim=-1), -1)

        count = token_at(torch.zeros_like(positions)) + positions
        left_masked = token_at(positions - 1) == MASK
        right = token_at(positions + 1)
        right_known = (right >= 0) & (right != MASK)
        over = count >= self.END
        token = torch.where(over, EOS, torch.where(left_masked, count + 1, count))
        sure = torch.where(right_known, 0.95, 0.75)
        prob = torch.where(over, 0.9, torch.where(left_masked, 0.4, sure)) - 0.005 * positions
        rest = ((1 - prob) / (self.config.vocab_size - 1)).log()
        logits = rest[..., None].expand(rows, width, self.config.vocab_size).clone()
        logits.scatter_(-1, token[..., None], prob.log()[..., None])
        return logits.float(), [(kv, kv)]


@pytest.fixture(scope="module")
def oracle() -> CountingOracle:
    return CountingOracle().eval()


def test_oracle_counts_and_reads_left_padding_and_the_cache(oracle):
    # PROMPT counts from 40: position 8 continues with 48; 9 guesses wrong while 8 is masked.
    ids = torch.tensor([PROMPT + [MASK] * 4])
    logits = oracle(ids)
    assert logits[0, 7:10].argmax(dim=-1).tolist() == [47, 48, 50]
    assert F.softmax(logits[0, 8].double(), dim=-1).max().item() == pytest.approx(0.75 - 0.04)
    # Left-padded, through a prefix cache: the same logits at the same positions.
    padded = torch.tensor([[MASK, MASK] + PROMPT + [MASK] * 4])
    positions = (torch.arange(14) - 2).clamp(min=0)[None]
    valid = torch.arange(14)[None] >= 2
    _, kv = oracle.hidden_states(padded, positions, self_attention_mask(valid), None)
    past = [(kv[0][0][:, :, :10], kv[0][1][:, :, :10])]
    cached, _ = oracle.hidden_states(padded[:, 10:], positions[:, 10:], valid[:, None, None, :], past)
    torch.testing.assert_close(cached, logits[:, 8:], rtol=0, atol=0)


# The reference: LLaDA's generate() in its most direct form. One adaptation: random numbers are
# drawn for the current block only (Gumbel noise, then random confidences), which is the draw
# order generate_diffusion documents; at temperature 0 with low_confidence nothing is drawn.
def add_gumbel_noise(logits, temperature, generator):
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    noise = torch.rand(logits.shape, generator=generator, dtype=torch.float64)
    gumbel_noise = (-torch.log(noise)) ** temperature
    return logits.exp() / gumbel_noise


def get_num_transfer_tokens(mask_index, steps):
    mask_num = mask_index.sum(dim=1, keepdim=True)
    base = mask_num // steps
    remainder = mask_num % steps
    num_transfer_tokens = torch.zeros(mask_num.size(0), steps, dtype=torch.int64) + base
    for i in range(mask_num.size(0)):
        num_transfer_tokens[i, : remainder[i]] += 1
    return num_transfer_tokens


@torch.no_grad()
def reference_generate(
    model, prompt, steps, gen_length, block_length, temperature, cfg_scale, remasking, generator
):
    x = torch.full((1, len(prompt) + gen_length), MASK, dtype=torch.long)
    x[:, : len(prompt)] = torch.tensor(prompt)
    prompt_index = x != MASK
    num_blocks = gen_length // block_length
    steps = steps // num_blocks
    for num_block in range(num_blocks):
        start = len(prompt) + num_block * block_length
        end = start + block_length
        block_mask_index = x[:, start:end] == MASK
        num_transfer_tokens = get_num_transfer_tokens(block_mask_index, steps)
        for i in range(steps):
            mask_index = x == MASK
            if cfg_scale > 0.0:
                un_x = x.clone()
                un_x[prompt_index] = MASK
                logits = model(torch.cat([x, un_x], dim=0))
                logits, un_logits = torch.chunk(logits, 2, dim=0)
                logits = un_logits + (cfg_scale + 1) * (logits - un_logits)
            else:
                logits = model(x)
            x0 = torch.argmax(logits, dim=-1)
            x0[:, start:end] = torch.argmax(
                add_gumbel_noise(logits[:, start:end], temperature, generator), dim=-1
            )
            if remasking == "low_confidence":
                p = F.softmax(logits.to(torch.float64), dim=-1)
                x0_p = torch.squeeze(torch.gather(p, dim=-1, index=torch.unsqueeze(x0, -1)), -1)
            else:
                x0_p = torch.full(x0.shape, -torch.inf, dtype=torch.float64)
                x0_p[:, start:end] = torch.rand((1, block_length), generator=generator, dtype=torch.float64)
            x0_p[:, end:] = -torch.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -torch.inf)
            transfer_index = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(confidence.shape[0]):
                _, select_index = torch.topk(confidence[j], k=int(num_transfer_tokens[j, i]))
                transfer_index[j, select_index] = True
            x[transfer_index] = x0[transfer_index]
    return x[0, len(prompt) :].tolist()


class CallSpy:
    """Records every model call: input ids, whether a cache was passed, query tokens processed."""

    def __init__(self, model: nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[torch.Tensor, bool]] = []
        original = model.hidden_states

        def spy(ids, positions, attn_mask, past):
            self.calls.append((ids.clone(), past is not None))
            return original(ids, positions, attn_mask, past)

        monkeypatch.setattr(model, "hidden_states", spy)

    @property
    def query_tokens(self) -> int:
        return sum(ids.numel() for ids, _ in self.calls)


def run(model, settings, prompts=(PROMPT,), eos=(EOS,), seed=None, **kwargs):
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return generate_diffusion(
        model, [list(p) for p in prompts], settings, MASK, set(eos), generator, **kwargs
    )


# --- settings -------------------------------------------------------------------------------------


def test_transfer_schedule_hand_cases():
    assert transfer_schedule(torch.tensor([5]), 2).tolist() == [[3, 2]]
    assert transfer_schedule(torch.tensor([5, 4, 2]), 3).tolist() == [[2, 2, 1], [2, 1, 1], [1, 1, 0]]


def test_an_answer_that_does_not_fit_the_context_says_how_long_it_may_be(model):
    with pytest.raises(UsageError, match="`gen_length` 16 does not fit: the prompt leaves 4 slots"):
        run(model, DiffusionSettings(gen_length=16), prompts=[[1] * 60])
    with pytest.raises(UsageError, match="the prompt fills the model's whole context"):
        run(model, DiffusionSettings(), prompts=[[1] * 64])


# --- the reference sampler ------------------------------------------------------------------------

REFERENCE_CASES = [
    # (block_length, steps, temperature, cfg_scale, remasking)
    (16, 16, 0.0, 0.0, "low_confidence"),
    (8, 16, 0.0, 0.0, "low_confidence"),
    (4, 16, 0.0, 0.0, "low_confidence"),
    (4, 8, 0.0, 0.0, "low_confidence"),
    (16, 6, 0.0, 0.0, "low_confidence"),
    (16, 16, 0.0, 1.5, "low_confidence"),
    (8, 16, 0.0, 1.5, "low_confidence"),
    (4, 16, 0.0, 0.5, "low_confidence"),
    (16, 16, 0.0, 0.0, "random"),
    (8, 16, 0.0, 0.0, "random"),
    (4, 8, 0.0, 1.5, "random"),
    (16, 16, 0.8, 0.0, "low_confidence"),
    (4, 16, 0.8, 1.5, "low_confidence"),
    (8, 8, 0.8, 0.0, "random"),
]


@pytest.mark.parametrize(("block_length", "steps", "temperature", "cfg_scale", "remasking"), REFERENCE_CASES)
@pytest.mark.parametrize("prompt", [PROMPT, [7, 8, 9]])
def test_matches_reference_token_for_token(
    model, prompt, block_length, steps, temperature, cfg_scale, remasking
):
    expected = reference_generate(
        model,
        prompt,
        steps,
        16,
        block_length,
        temperature,
        cfg_scale,
        remasking,
        torch.Generator().manual_seed(3),
    )
    settings = DiffusionSettings(
        gen_length=16,
        steps=steps,
        block_length=block_length,
        temperature=temperature,
        cfg_scale=cfg_scale,
        remasking=remasking,
    )
    (got,) = run(model, settings, prompts=[prompt], eos=(), seed=3)  # no EOS: the whole region is returned
    assert got.token_ids == expected
    assert got.steps == steps
    assert got.forward_passes == steps * (2 if cfg_scale else 1)


def test_early_stop_cuts_at_eos_and_saves_passes(oracle):
    # The oracle counts 48..55 (one token per step), then proposes EOS from the third block on.
    reference = reference_generate(oracle, PROMPT, 16, 16, 4, 0.0, 0.0, "low_confidence", None)
    cut = list(range(48, 56))
    assert reference == cut + [EOS] * 8
    settings = DiffusionSettings(gen_length=16, block_length=4)
    (early,) = run(oracle, settings)
    (full,) = run(oracle, DiffusionSettings(gen_length=16, block_length=4, early_stop=False))
    assert early.token_ids == full.token_ids == cut
    assert early.finished and full.finished
    assert early.forward_passes == 9 < full.forward_passes == 16  # ends on the EOS at step 9
    assert early.tokens_per_forward == pytest.approx(len(cut) / early.forward_passes)


def test_early_stop_fills_the_view_with_eos(oracle):
    views = []
    run(oracle, DiffusionSettings(gen_length=16, block_length=4), on_step=lambda step, x: views.append(x))
    assert len(views) == 9
    assert views[-2][0].tolist() == list(range(48, 56)) + [MASK] * 8
    assert views[-1][0].tolist() == list(range(48, 56)) + [EOS] * 8


def test_suppress_eos_never_emits_eos(model):
    (got,) = run(model, DiffusionSettings(gen_length=16, block_length=4, suppress_eos=True))
    assert len(got.token_ids) == 16 and EOS not in got.token_ids
    assert not got.finished


def test_without_eos_confidence_eos_ranks_below_every_other_candidate():
    # Column 0 proposes EOS (p ~ 0.99), column 1 token 5 (p ~ 0.4), column 2 EOS (p ~ 0.6).
    probs = torch.full((1, 3, 64), 1e-9)
    probs[0, 0, EOS], probs[0, 0, 1] = 0.99, 0.01
    probs[0, 1, 5], probs[0, 1, 6], probs[0, 1, 7] = 0.4, 0.3, 0.3
    probs[0, 2, EOS], probs[0, 2, 3] = 0.6, 0.4
    logits = probs.log()
    eos = torch.tensor([EOS])
    _, plain = propose(logits.clone(), DiffusionSettings(), eos, MASK, None)
    candidates, demoted = propose(logits.clone(), DiffusionSettings(eos_confidence=False), eos, MASK, None)
    assert candidates.tolist() == [[EOS, 5, EOS]]
    assert plain.argsort(descending=True).tolist() == [[0, 2, 1]]
    assert demoted.argsort(descending=True).tolist() == [[1, 0, 2]]  # EOS last, still by confidence
    assert top_k_mask(demoted, torch.tensor([1])).tolist() == [[False, True, False]]
    assert threshold_mask(demoted, 0.5).tolist() == [[False, True, False]]


# --- threshold, cache, editing --------------------------------------------------------------------


def test_threshold_mask_hand_case():
    confidence = torch.tensor(
        [[0.9, 0.2, -torch.inf, 0.95], [0.1, 0.3, -torch.inf, -torch.inf], [-torch.inf] * 4],
        dtype=torch.float64,
    )
    assert threshold_mask(confidence, 0.8).tolist() == [
        [True, False, False, True],  # every column at least tau
        [False, True, False, False],  # none is: the single most confident one
        [False, False, False, False],  # nothing left to commit
    ]


def test_threshold_commits_at_least_one_per_step(oracle):
    # First block: only the column after the last known token is above 0.6, so exactly one commits
    # per step. Second block: every column proposes EOS at about 0.8, so all commit at once.
    trace = []
    (got,) = run(oracle, DiffusionSettings(gen_length=16, block_length=8, threshold=0.6), eos=(), trace=trace)
    per_step = torch.bincount(torch.tensor([event.step for event in trace]))
    assert got.token_ids == list(range(48, 56)) + [EOS] * 8
    assert got.steps == len(per_step) == 9 < 16  # adaptive: fewer steps than tokens
    assert per_step.tolist() == [1] * 8 + [8]
    assert all(event.kind == "commit" for event in trace)


def test_a_threshold_no_confidence_reaches_is_one_token_per_step(model):
    (fixed,) = run(model, DiffusionSettings(gen_length=16, block_length=8), eos=())
    (strict,) = run(model, DiffusionSettings(gen_length=16, block_length=8, threshold=1.0), eos=())
    assert strict.token_ids == fixed.token_ids
    assert strict.steps == strict.forward_passes == 16


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cache_is_exact_when_never_read(model, cache):
    # One step per block: every step is a block's first, which runs the full sequence.
    settings = DiffusionSettings(gen_length=16, block_length=4, steps=4)
    (plain,) = run(model, settings, eos=())
    (cached,) = run(model, DiffusionSettings(gen_length=16, block_length=4, steps=4, cache=cache), eos=())
    assert cached.token_ids == plain.token_ids


def test_cache_processes_fewer_tokens_and_counts_every_call(model, monkeypatch):
    processed, outputs = {}, {}
    for cache in ("none", "prefix", "dual"):
        spy = CallSpy(model, monkeypatch)
        settings = DiffusionSettings(gen_length=16, block_length=4, threshold=0.9, cache=cache)
        (got,) = run(model, settings, eos=())
        assert got.forward_passes == len(spy.calls)
        assert len(got.token_ids) == 16 and MASK not in got.token_ids
        processed[cache], outputs[cache] = spy.query_tokens / len(spy.calls), got
        monkeypatch.undo()
    assert processed["dual"] < processed["prefix"] < processed["none"]


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cache_runs_the_block_with_its_true_positions(model, monkeypatch, cache):
    positions_seen = []
    original = model.hidden_states

    def spy(ids, positions, attn_mask, past):
        if past is not None:
            positions_seen.append(positions.tolist())
        return original(ids, positions, attn_mask, past)

    monkeypatch.setattr(model, "hidden_states", spy)
    run(model, DiffusionSettings(gen_length=8, block_length=4, steps=4, cache=cache), eos=())
    first_block = list(range(8, 12)) if cache == "dual" else list(range(8, 16))
    assert positions_seen[0] == first_block


def test_editing_records_edits_and_never_touches_the_prompt(oracle, monkeypatch):
    spy = CallSpy(oracle, monkeypatch)
    trace = []
    settings = DiffusionSettings(gen_length=16, block_length=8, threshold=0.2, edit_threshold=0.0)
    (got,) = run(oracle, settings, eos=(), trace=trace)
    edits = [event for event in trace if event.kind == "edit"]
    # A low threshold commits the whole first block at step 0, wrong guesses after its first column
    # (their left neighbours were masked); step 1 rewrites every one of them.
    assert [(e.step, e.position, e.token_id) for e in edits] == [(1, i, 48 + i) for i in range(1, 8)]
    assert got.token_ids == list(range(48, 56)) + [EOS] * 8
    for edit in edits:  # an edit rewrites a position committed at an earlier step
        assert any(e.position == edit.position and e.kind == "commit" and e.step < edit.step for e in trace)
    assert all(bool((ids[:, : len(PROMPT)] == torch.tensor(PROMPT)).all()) for ids, _ in spy.calls)
    assert all(0 <= event.position < 16 for event in trace)
    assert got.steps == 5 <= 2 * 16  # 3 + 2 steps; the cap: twice the block length per block
    final = {}
    for event in sorted(trace, key=lambda e: e.step):
        final[event.position] = event.token_id
    assert [final[i] for i in range(16)] == got.token_ids


def test_editing_rewrites_earlier_blocks_but_not_the_prompt(oracle, monkeypatch):
    # The prompt does not count (the oracle would propose 2 and 3 after the 1, surely enough to edit).
    prompt = [1, 5, 9]
    ids = torch.tensor([prompt + list(range(4, 8))])
    probs = F.softmax(oracle(ids)[0, 1:3].double(), dim=-1)
    assert probs.argmax(dim=-1).tolist() == [2, 3] and bool((probs.max(dim=-1).values > 0.8).all())
    spy = CallSpy(oracle, monkeypatch)
    trace = []
    settings = DiffusionSettings(gen_length=16, block_length=8, threshold=0.2, edit_threshold=0.8)
    (got,) = run(oracle, settings, prompts=[prompt], eos=(), trace=trace)
    # A block's last column is only sure (0.95 > 0.8) once the next block holds a token: the wrong
    # guess at position 7 survives the first block and is rewritten at the second block's second step.
    edits = [(e.step, e.position, e.token_id) for e in trace if e.kind == "edit"]
    block_two = [(4, i, 4 + i) for i in range(9, 15)]
    assert edits == [(1, i, 4 + i) for i in range(1, 7)] + [(4, 7, 11)] + block_two
    assert got.token_ids == list(range(4, 19)) + [20]  # the answer's last column has no right neighbour
    assert all(ids[0, :3].tolist() == prompt for ids, _ in spy.calls)


def test_editing_never_writes_the_mask(oracle, monkeypatch):
    original = oracle.hidden_states

    def mask_once_written(ids, positions, attn_mask, past):
        logits, kv = original(ids, positions, attn_mask, past)
        # The first answer column, once it holds a token, proposes the mask almost surely.
        logits[(positions.expand(ids.shape) == 8) & (ids != MASK), MASK] = 20.0
        return logits, kv

    monkeypatch.setattr(oracle, "hidden_states", mask_once_written)
    settings = DiffusionSettings(gen_length=16, block_length=8, threshold=0.2, edit_threshold=0.5)
    (got,) = run(oracle, settings, eos=())
    assert got.token_ids == list(range(48, 56)) + [EOS] * 8
    assert got.steps == 5  # the blocks settle as without the mask proposal


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_editing_with_a_cache_keeps_to_the_current_block(oracle, cache):
    trace = []
    settings = DiffusionSettings(
        gen_length=16, block_length=8, threshold=0.2, edit_threshold=0.8, cache=cache
    )
    (got,) = run(oracle, settings, prompts=[[1, 5, 9]], eos=(), trace=trace)
    edits = [(e.step, e.position) for e in trace if e.kind == "edit"]
    assert edits == [(1, i) for i in range(1, 7)] + [(4, i) for i in range(9, 15)]
    assert got.token_ids == list(range(4, 11)) + [12] + list(range(12, 19)) + [20]


# --- batching and reporting -----------------------------------------------------------------------

BATCH_SETTINGS = [
    DiffusionSettings(gen_length=16, block_length=4),
    DiffusionSettings(gen_length=16, block_length=8, steps=8, cfg_scale=1.0),
    DiffusionSettings(gen_length=16, block_length=4, threshold=0.7),
    DiffusionSettings(gen_length=16, block_length=8, threshold=0.5, edit_threshold=0.3),
    DiffusionSettings(gen_length=16, block_length=4, threshold=0.8, cache="prefix"),
    DiffusionSettings(gen_length=16, block_length=4, threshold=0.8, cache="dual", cfg_scale=0.5),
]


@pytest.mark.parametrize("settings", BATCH_SETTINGS)
def test_batch_equals_each_prompt_alone(model, settings):
    prompts = [[7, 8, 9], PROMPT, [20, 21, 22, 23, 24]]
    together = run(model, settings, prompts=prompts)
    alone = [run(model, settings, prompts=[prompt])[0] for prompt in prompts]
    assert [g.token_ids for g in together] == [g.token_ids for g in alone]
    assert [g.finished for g in together] == [g.finished for g in alone]


def test_finished_rows_leave_the_batch_at_block_boundaries(oracle, monkeypatch):
    spy = CallSpy(oracle, monkeypatch)
    early, late = run(oracle, DiffusionSettings(gen_length=16, block_length=4), prompts=[PROMPT, [1, 2, 3]])
    assert early.finished and early.token_ids == list(range(48, 56)) and early.forward_passes == 9
    assert not late.finished and late.token_ids == list(range(4, 20)) and late.forward_passes == 16
    # The ended row stays frozen in the batch until its block ends (4 steps per block), then leaves.
    rows_per_call = [len(ids) for ids, _ in spy.calls]
    shared = -(-early.forward_passes // 4) * 4
    assert rows_per_call == [2] * shared + [1] * (late.forward_passes - shared)


def test_on_step_and_trace_cover_every_step(model):
    views, trace = [], []
    prompts = [[7, 8, 9], PROMPT]
    results = run(
        model,
        DiffusionSettings(gen_length=16, block_length=8, steps=8),
        prompts=prompts,
        eos=(),
        on_step=lambda step, x: views.append((step, x.shape)),
        trace=trace,
    )
    assert views == [(step, (2, 16)) for step in range(8)]
    for row in range(2):
        positions = sorted(event.position for event in trace if event.row == row)
        assert positions == list(range(16))  # each position committed exactly once
        assert results[row].steps == 8 and results[row].tokens_per_forward == 2.0


def test_seeded_sampling_is_reproducible(model):
    settings = DiffusionSettings(gen_length=16, block_length=8, temperature=1.0)
    first = run(model, settings, eos=(), seed=11)[0].token_ids
    assert run(model, settings, eos=(), seed=11)[0].token_ids == first
    assert any(run(model, settings, eos=(), seed=s)[0].token_ids != first for s in (12, 13, 14))


def test_no_prompts_no_work(model):
    assert generate_diffusion(model, [], DiffusionSettings(gen_length=16), MASK, {EOS}) == []


# --- Nano-LLaDA's sampler options: CAP budget, repeat penalty, top-k --------------------------------


def test_threshold_with_a_budget_keeps_the_most_confident():
    confidence = torch.tensor([[0.95, 0.92, 0.5, 0.97]], dtype=torch.float64)
    assert threshold_mask(confidence, 0.9, torch.tensor([2])).tolist() == [[True, False, False, True]]
    assert threshold_mask(confidence, 0.99, torch.tensor([2])).tolist() == [[False, False, False, True]]


def test_cap_budget_by_hand():
    settings = DiffusionSettings(threshold=0.9, cap_start_ratio=0.1, cap_end_ratio=0.5)
    remaining, initial = torch.tensor([10, 4, 20]), torch.tensor([10, 10, 40])
    # shares 0.1 (nothing done), 0.1 + 0.4 * 0.6 = 0.34, 0.1 + 0.4 * 0.5 = 0.3:
    # round(1.0), round(1.36), round(6.0)
    assert cap_budget(remaining, initial, settings).tolist() == [1, 1, 6]
    capped = DiffusionSettings(threshold=0.9, cap_start_ratio=0.1, cap_end_ratio=0.5, max_decode_per_step=4)
    assert cap_budget(remaining, initial, capped).tolist() == [1, 1, 4]
    assert cap_budget(remaining, initial, DiffusionSettings(threshold=0.9)) is None


def test_the_cap_limits_how_many_commit_per_step(oracle):
    # The second block proposes EOS everywhere at about 0.8: without a cap all 8 commit in one step.
    settings = DiffusionSettings(gen_length=16, block_length=8, threshold=0.6, max_decode_per_step=3)
    trace = []
    run(oracle, settings, eos=(), trace=trace)
    per_step = torch.bincount(torch.tensor([event.step for event in trace]))
    assert per_step.tolist() == [1] * 8 + [3, 3, 2]


def test_penalize_recent_counts_the_last_decided_tokens():
    x = torch.tensor([[5, MASK, 5, 7, MASK]])
    logits = torch.zeros(1, 2, 10)
    lowered = penalize_recent(logits, x, MASK, penalty=0.5, window=2)  # the last two decided: 5 and 7
    assert lowered[0, 0, 5].item() == lowered[0, 0, 7].item() == -0.5
    everything = penalize_recent(logits, x, MASK, penalty=0.5, window=0)
    assert everything[0, 1, 5].item() == -1.0 and everything[0, 1, 7].item() == -0.5


def test_top_k_keeps_sampled_candidates_among_the_k_most_likely():
    logits = torch.log_softmax(torch.randn(2, 6, 30, generator=torch.Generator().manual_seed(0)), dim=-1)
    mask = 29
    allowed = logits.clone().index_fill_(-1, torch.tensor([mask]), -torch.inf).topk(3, dim=-1).indices
    settings = DiffusionSettings(temperature=1.0, top_k=3)
    for seed in range(20):
        candidates, _ = propose(
            logits.clone(), settings, torch.tensor([EOS]), mask, torch.Generator().manual_seed(seed)
        )
        assert (candidates[..., None] == allowed).any(dim=-1).all()


def test_cap_options_need_a_threshold():
    with pytest.raises(UsageError, match="limit threshold decoding"):
        resolve_settings(DiffusionSettings(max_decode_per_step=4, exact=True))


class FlippingEnds(nn.Module):
    """Proposes, at every slot and very confidently, whichever end token (1 or 2) the first answer
    slot does not hold: what a small chat model does between <|endoftext|> and <|im_end|>."""

    def __init__(self, answer_start: int) -> None:
        super().__init__()
        self.config = ModelConfig(vocab_size=8, seq_len=64, causal=False)
        self.anchor = nn.Parameter(torch.zeros(()))
        self.lm_head = nn.Identity()
        self.answer_start = answer_start

    def hidden_states(self, ids, positions, attn_mask, past):
        other = torch.where(ids[:, self.answer_start] == 1, 2, 1)
        logits = torch.full((*ids.shape, 8), -10.0)
        logits[torch.arange(len(ids)), :, other] = 10.0
        return logits, []


def test_trading_one_end_token_for_another_is_no_edit_and_an_empty_answer_ends_at_once():
    prompt = [3, 4, 5]
    settings = DiffusionSettings(gen_length=8, mode="quality")  # editing at 0.5
    [generation] = generate_diffusion(FlippingEnds(len(prompt)), [prompt], settings, 7, {1, 2})
    assert generation.token_ids == [] and generation.finished
    assert generation.forward_passes <= 2  # not 16 steps of flipping 1 <-> 2
