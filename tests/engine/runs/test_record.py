"""Run records (runs/record.py): a registry written by the release before the configuration redesign
still loads, samples and resumes.

tests/fixtures/legacy-home was made by that release (commit 4194e8b): `legacy-ar` (2 AR steps) and
`legacy-dlm` (diffusion from legacy-ar with --noise-schedule cosine --normalized-loss
--iid-mask-eps 0.002, 4 steps, stopped after its step-2 checkpoint). Its run.json uses the old
layout and the old field names (`request`, `normalised_loss`, `eps`). legacy-dlm-step4.safetensors
holds the weights the uninterrupted run reached at step 4.
"""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file

from llada_cli.engine.errors import LladaError
from llada_cli.engine.runs.record import RunInfo
from tests.conftest import TESTS

FIXTURES = TESTS / "fixtures"


@pytest.fixture
def legacy(cli):
    shutil.copytree(FIXTURES / "legacy-home", cli.home)
    return cli


def test_legacy_runs_sample(legacy) -> None:
    ar = json.loads(legacy.ok("sample", "legacy-ar", "-p", "The", "--max-new-tokens", "4", "--json").stdout)
    dlm = json.loads(legacy.ok("sample", "legacy-dlm", "-p", "The", "--gen-length", "4", "--json").stdout)
    assert ar["kind"] == "ar" and len(ar["results"][0]["token_ids"]) <= 4
    assert dlm["kind"] == "diffusion" and dlm["results"][0]["forward_passes"] == 4
    # written before the logit shift existed: continued from AR, yet unshifted, as trained
    assert RunInfo.load(legacy.home / "runs" / "legacy-dlm" / "run.json").model.logit_shift is False


def test_legacy_run_resumes_to_the_uninterrupted_weights(legacy) -> None:
    legacy.ok("pretrain", "diffusion", "--run-name", "legacy-dlm", "--resume")
    run = legacy.home / "runs" / "legacy-dlm"
    resumed = load_file(run / "checkpoints" / "step-0000004" / "model.safetensors")
    expected = load_file(FIXTURES / "legacy-dlm-step4.safetensors")
    assert resumed.keys() == expected.keys()
    for name, tensor in expected.items():
        assert (resumed[name] - tensor).abs().max() < 1e-4, name
    info = json.loads(legacy.ok("runs", "show", "legacy-dlm", "--json").stdout)
    assert info["status"] == "completed" and info["step"] == 4
    steps = [m["step"] for m in legacy.metrics("legacy-dlm")]
    assert steps == [1, 2, 3, 4]


def test_a_block_curriculum_run_of_format_2_keeps_its_meaning():
    """Before Nano-LLaDA's flags, `mask_schedule: wsd` named the block curriculum: it still does."""
    stored = {
        "format": 2,
        "name": "old-wsd",
        "kind": "diffusion",
        "stage": "pretrain",
        "model": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "seq_len": 32},
        "parameters": 1,
        "objective": {"mask_schedule": "wsd", "block_sizes_up": [1, 32], "wsd_warmup_ratio": 0.4},
    }
    objective = RunInfo.from_json(stored).objective
    assert (objective.mask_schedule, objective.use_block_curriculum) == ("iid_t", True)
    assert objective.wsd_block_sizes_up == (1, 32)
    assert objective.wsd_phase_ratios == pytest.approx((0.4, 0.5, 0.1))
    assert (objective.wsd_warmup_ratio, objective.wsd_stable_ratio) == (
        0.2,
        0.6,
    )  # today's mask-ratio defaults


def good_record() -> dict:
    return json.loads((FIXTURES / "legacy-home" / "runs" / "legacy-ar" / "run.json").read_text())


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"kind": "gpt"}, "field 'kind' must be one of ar, diffusion, got 'gpt'"),
        ({"model": None}, "field 'model' must be an object, got None"),
        ({"model": [1]}, "field 'model' must be an object"),
        ({"tokens": "lots"}, "field 'tokens' must be an integer, got 'lots'"),
        ({"best": "x"}, "field 'best' must be an object or null"),
        ({"created": "yesterday"}, "field 'created' must be a date and time"),
        ({"status": 5}, "field 'status' must be one of created, running"),
        ({"parent": 123}, "field 'parent' must be a string or null, got 123"),
        ({"command": "llada"}, "field 'command' must be a list of strings"),
        ({"step": 10**40}, "field 'step' must be an integer"),
        ({"format": 3, "train": {"batch_size": "16"}}, "field 'train.batch_size' must be an integer"),
        ({"format": 3, "train": None, "data": []}, "field 'data' must be an object, got []"),
        ({"format": "3"}, "field 'format' must be an integer from 1 to 3"),
        ({"format": 99}, "was written by a newer llada (format 99; this release reads formats 1 to 3)"),
    ],
)
def test_a_damaged_run_json_is_refused_naming_its_field(tmp_path, change, words) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**good_record(), **change}))
    with pytest.raises(LladaError) as refused:
        RunInfo.load(path)
    assert str(refused.value).startswith(str(path)) and words in str(refused.value)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"step": ' + "9" * 5000 + "}", "\xff\xfe"])
def test_json_that_readers_refuse_is_a_corrupt_run_json(tmp_path, text) -> None:
    path = tmp_path / "run.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(LladaError, match="is corrupt"):
        RunInfo.load(path)
