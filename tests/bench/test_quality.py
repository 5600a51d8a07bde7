"""bench/quality.py: its statistics as pure functions, an arm over two seeds on canned `llada` answers,
and end to end at a toy size (its JSON document, its PNG, reuse of trained runs)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT

TOY = "--preset tiny --hidden-size 32 --num-hidden-layers 1 --num-attention-heads 2"
TOY += " --seq-len 128 --vocab-size 300"
SETS = ("seen", "forward", "reverse")

spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "bench" / "quality.py")
quality = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quality)


def eval_accuracy(correct: dict[str, tuple[int, int]], per_lang: int = 16) -> dict:
    """`llada eval --json`'s "accuracy": correct (en, zh) of `per_lang` questions per set and language."""
    groups: dict[str, dict] = {}
    for s in SETS:
        en, zh = correct.get(s, (0, 0))
        groups[f"{s}/en"] = {"correct": en, "total": per_lang}
        groups[f"{s}/zh"] = {"correct": zh, "total": per_lang}
        groups[s] = {"correct": en + zh, "total": 2 * per_lang}
    for group in groups.values():
        group["accuracy"] = round(group["correct"] / group["total"], 4)
    return groups


# ------------------------------------------------------------------------------ pure functions


def test_mean_std_is_the_sample_deviation() -> None:
    assert quality.mean_std([0.375, 0.5]) == (0.4375, pytest.approx(0.125 / math.sqrt(2)))
    mean, std = quality.mean_std([1, 2, 3, 4])  # squares about 2.5: 2.25 + 0.25 + 0.25 + 2.25 = 5, / 3
    assert mean == 2.5 and std == pytest.approx(math.sqrt(5 / 3))
    assert quality.mean_std([0.25]) == (0.25, 0.0)
    with pytest.raises(ValueError):
        quality.mean_std([])


def test_tokens_to_reach_is_the_first_checkpoint_at_or_above() -> None:
    curve = [{"tokens": 100, "seen": 0.1}, {"tokens": 200, "seen": 0.3}, {"tokens": 300, "seen": 0.2}]
    assert quality.tokens_to_reach(curve, "seen", 0.25) == 200
    assert quality.tokens_to_reach(curve, "seen", 0.3) == 200  # reaching means equal is enough
    assert quality.tokens_to_reach(curve, "seen", 0.0) == 100
    assert quality.tokens_to_reach(curve, "seen", 0.31) == "not within"


def test_scores_are_exact_fractions_per_set_and_language() -> None:
    accuracy = eval_accuracy({"seen": (8, 4), "forward": (1, 0)})
    accuracy["forward"]["accuracy"] = 0.0312  # what llada eval prints: rounded; the counts are exact
    got = quality.scores(accuracy)
    assert (got["seen"], got["forward"], got["reverse"]) == (0.375, 1 / 32, 0.0)
    assert got["by_lang"] == {
        "en": {"seen": 0.5, "forward": 1 / 16, "reverse": 0.0},
        "zh": {"seen": 0.25, "forward": 0.0, "reverse": 0.0},
    }
    assert got["questions"] == {"seen": 16, "forward": 16, "reverse": 16}
    accuracy["seen/zh"]["total"] = 12
    assert quality.scores(accuracy)["questions"]["seen"] == {"en": 16, "zh": 12}


def test_mean_curve_averages_points_of_the_same_step() -> None:
    one = [{"step": 1, "tokens": 100, "seen": 0.25, "forward": 0.0, "reverse": 0.0}]
    two = [{"step": 1, "tokens": 111, "seen": 0.5, "forward": 0.0, "reverse": 0.0}]
    (point,) = quality.mean_curve([one, two])
    assert point["step"] == 1 and point["tokens"] == 106  # 105.5 rounds to even
    assert point["seen"] == 0.375 and point["std"]["seen"] == round(0.25 / math.sqrt(2), 4)
    with pytest.raises(ValueError):
        quality.mean_curve([one, [{**two[0], "step": 2}]])


# ------------------------------------------------------------------- two seeds on canned answers

# correct answers (en, zh) of 16 per language, by (chat run without seed, SFT step, seed)
CANNED = {
    ("ar-chat", 1, 0): {"seen": (2, 2)},
    ("ar-chat", 1, 1): {"seen": (2, 2)},
    ("ar-chat", 2, 0): {"seen": (8, 4), "forward": (4, 0)},  # seen 12/32, forward 4/32
    ("ar-chat", 2, 1): {"seen": (8, 8), "forward": (2, 2)},  # seen 16/32, forward 4/32
    ("dlm-from-ar-chat", 1, 0): {"seen": (7, 7), "forward": (2, 2)},  # seen 14/32, forward 4/32
    ("dlm-from-ar-chat", 1, 1): {"seen": (8, 8), "forward": (4, 0)},  # seen 16/32, forward 4/32
    ("dlm-from-ar-chat", 2, 0): {"seen": (8, 8), "forward": (2, 2), "reverse": (1, 0)},
    ("dlm-from-ar-chat", 2, 1): {"seen": (8, 8), "forward": (2, 2), "reverse": (1, 0)},
    ("dlm-scratch-chat", 1, 0): {"seen": (4, 4)},
    ("dlm-scratch-chat", 1, 1): {"seen": (4, 4)},
    ("dlm-scratch-chat", 2, 0): {"seen": (8, 8), "forward": (1, 1)},  # seen 16/32
    ("dlm-scratch-chat", 2, 1): {"seen": (7, 7), "forward": (1, 1)},  # seen 14/32
}


class CannedBench(quality.Bench):
    """Records what it would train and answers `llada eval` from CANNED; no torch, no runs."""

    def __init__(self, args, home: Path) -> None:
        args.home = home
        super().__init__(args)
        self.trained: list[tuple[str, int, tuple[str, ...]]] = []
        self.evaluated: list[tuple[str, ...]] = []

    def train(self, name: str, seed: int, *command: str) -> float:
        self.trained.append((name, seed, command))
        return 10.0 + seed

    def tokens_at(self, name: str, step: int) -> int:  # 100 tokens a step, seed 1 ten more
        return 100 * min(step, 10) + (10 if name.endswith("-s1") else 0)

    def checkpoints(self, name: str) -> list[int]:
        return [1, 2]

    def llada(self, *args: str) -> str:
        self.evaluated.append(args)
        assert args[0] == "--seed" and args[2] == "eval"
        seed, run = int(args[1]), args[3]
        if "--no-questions" in args:
            return json.dumps(
                {
                    "likelihood": {
                        "perplexity": 10.0 + seed,
                        "bits_per_token": 3.0,
                        "exact": run.startswith("ar-"),
                    }
                }
            )
        name, step = run.split("@")
        stem = name.removesuffix(f"-s{seed}")
        return json.dumps({"accuracy": eval_accuracy(CANNED[stem, int(step), seed])})


def test_two_seeds_give_means_deviations_languages_and_tokens_to_ar(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["quality.py", "--seeds", "2", "--pretrain-steps", "4"])
    bench = CannedBench(quality.parse_args(), tmp_path)
    arms = [quality.run_arm(bench, arm) for arm in quality.ARMS]
    quality.add_tokens_to_ar(arms)
    ar, from_ar, scratch = arms

    # every run of seed s trains with --seed s under a name ending -s<s>, from the AR run of its seed
    assert {(name, seed) for name, seed, _ in bench.trained} == {
        (f"{stem}-s{seed}", seed)
        for seed in (0, 1)
        for stem in (
            "ar-base",
            "ar-chat",
            "dlm-from-ar-base",
            "dlm-from-ar-chat",
            "dlm-scratch-base",
            "dlm-scratch-chat",
        )
    }
    init = {
        name: command[command.index("--init-from") + 1]
        for name, _, command in bench.trained
        if "--init-from" in command
    }
    assert init == {"dlm-from-ar-base-s0": "ar-base-s0@2", "dlm-from-ar-base-s1": "ar-base-s1@2"}
    assert all(args[1] == args[3].split("@")[0][-1] for args in bench.evaluated)

    assert ar["seeds"] == 2 and ar["kind"] == "ar" and from_ar["kind"] == "diffusion"
    assert (ar["seen"], ar["forward"], ar["reverse"]) == (0.4375, 0.125, 0.0)  # (12 + 16) / 64, 8 / 64
    assert ar["std"] == {"seen": round(0.125 / math.sqrt(2), 4), "forward": 0.0, "reverse": 0.0}
    assert ar["by_lang"] == {
        "en": {"seen": 0.5, "forward": 0.1875, "reverse": 0.0},  # (8 + 8) / 32, (4 + 2) / 32
        "zh": {"seen": 0.375, "forward": 0.0625, "reverse": 0.0},  # (4 + 8) / 32, (0 + 2) / 32
    }
    assert ar["questions"] == {"seen": 16, "forward": 16, "reverse": 16}
    assert "tokens_to_ar" not in ar
    # tokens: pretraining 1000 (+10 for seed 1) and SFT 100 a step (+10): seeds at 1200 and 1220
    assert ar["tokens"] == 1210 and ar["perplexity"] == 10.5
    assert ar["seconds"] == 21.0  # pretraining and SFT, 10 s each for seed 0 and 11 s for seed 1
    assert [p["tokens"] for p in ar["curve"]] == [1110, 1210] and ar["curve"][1]["seen"] == 0.4375

    # from AR: 200 (+10) of the AR run, 1000 (+10) of its own, then SFT; at step 1 seen 15/32 >= 14/32
    # and forward 4/32 = AR's 4/32: both reached at the first checkpoint
    assert [p["tokens"] for p in from_ar["curve"]] == [1315, 1415]
    assert from_ar["tokens_to_ar"] == {"seen": 1315, "forward": 1315}
    assert from_ar["reverse"] == 0.0312 and from_ar["std"]["reverse"] == 0.0
    # scratch: seen 8/32 then 15/32 reaches AR's 14/32 at step 2; forward 2/32 never reaches 4/32
    assert scratch["tokens_to_ar"] == {"seen": 1210, "forward": "not within"}
    assert scratch["seen"] == 0.4688 and scratch["std"]["seen"] == round(1 / 16 / math.sqrt(2), 4)
    assert [r["seed"] for r in scratch["per_seed"]] == [0, 1]
    assert [r["seen"] for r in scratch["per_seed"]] == [0.5, 0.4375]

    text = quality.table(arms)
    assert (
        "over 2 seeds" in text and "questions per language (en, zh): seen 16, forward 16, reverse 16" in text
    )
    assert "44% ± 9%" in text and "not within" in text and "1,315" in text


# ------------------------------------------------------------------------------ end to end


TOY_FLAGS = ("--pretrain-steps", "4", "--sft-steps", "2", "--curve-points", "1", "--size", TOY)


def run_bench(home: Path, *flags: str) -> tuple[dict, str]:
    command = [sys.executable, str(ROOT / "bench" / "quality.py"), "--home", str(home), "--json", *flags]
    result = subprocess.run([*command, *TOY_FLAGS], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(result.stdout), result.stderr


def test_quality_bench_reports_three_arms_over_seeds_and_reuses_its_runs(tmp_path: Path, monkeypatch) -> None:
    document, log = run_bench(tmp_path, "--seeds", "2")
    arms = document["arms"]
    assert [(a["arm"], a["kind"]) for a in arms] == [
        ("ar", "ar"),
        ("diffusion-from-ar", "diffusion"),
        ("diffusion-scratch", "diffusion"),
    ]
    from llada_cli.engine.data.builtin import builtin_corpus

    asked = Counter((q.split, q.lang) for q in builtin_corpus().questions)
    for arm in arms:
        assert arm["seeds"] == 2 and [r["seed"] for r in arm["per_seed"]] == [0, 1]
        assert arm["questions"] == {s: asked[s, "en"] for s in SETS} == {s: asked[s, "zh"] for s in SETS}
        for s in SETS:
            mean, std = quality.mean_std([r[s] for r in arm["per_seed"]])
            assert 0.0 <= arm[s] <= 1.0 and arm[s] == round(mean, 4) and arm["std"][s] == round(std, 4)
            by_lang = [arm["by_lang"][lang][s] for lang in ("en", "zh")]
            assert all(0.0 <= a <= 1.0 for a in by_lang) and sum(by_lang) / 2 == pytest.approx(
                arm[s], abs=1e-4
            )
        assert arm["tokens"] > 0 and arm["seconds"] > 0 and arm["perplexity"] > 1
        assert arm["perplexity_is_bound"] is (arm["kind"] == "diffusion")
        assert arm["curve"][-1]["tokens"] == arm["tokens"] and len(arm["curve"]) == 1
        if arm["kind"] == "diffusion":
            for s in ("seen", "forward"):
                reached = arm["curve"][-1][s] >= arms[0][s]
                assert arm["tokens_to_ar"][s] == (arm["tokens"] if reached else "not within")
    # matched tokens: the same steps and batch for every arm (diffusion cuts a few batches short)
    tokens = [a["tokens"] for a in arms]
    assert max(tokens) <= 1.1 * min(tokens)
    assert Path(document["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ar-base-s0: training" in log and "ar-base-s1: training" in log
    ledger = json.loads((tmp_path / "quality-bench.json").read_text())
    assert ledger["dlm-scratch-chat-s1"]["command"][:3] == ["--seed", "1", "sft"]

    # run again (in process: only the evaluations are answered, from canned figures): nothing retrains
    monkeypatch.setattr(sys, "argv", ["quality.py", "--home", str(tmp_path), "--seeds", "2", *TOY_FLAGS])
    bench = quality.Bench(quality.parse_args())
    canned = {
        "accuracy": eval_accuracy({}),
        "likelihood": {"perplexity": 9.0, "bits_per_token": 3.0, "exact": True},
    }
    calls: list[tuple[str, ...]] = []

    def evaluate_only(*args: str) -> str:
        calls.append(args)
        assert args[2] == "eval", f"retrained: {args}"
        return json.dumps(canned)

    monkeypatch.setattr(bench, "llada", evaluate_only)
    again = [quality.run_arm(bench, arm) for arm in quality.ARMS]
    assert len(calls) == 3 * 2 * 2  # per arm and seed: one checkpoint and the base's likelihood
    assert [a["seconds"] for a in again] == [a["seconds"] for a in arms]
