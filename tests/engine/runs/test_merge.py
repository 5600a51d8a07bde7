"""runs/merge.py: the mean of checkpoints as a new run, exactly; Nano-LLaDA's top k by validation
loss; sources of another kind, stage, shape or tokenizer refused, and nothing written then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llada_cli.engine.config import Kind, ModelConfig
from llada_cli.engine.errors import UsageError
from llada_cli.engine.model.checkpoint import read_tensors, save_weights
from llada_cli.engine.runs.folder import Run
from llada_cli.engine.runs.merge import Source, lowest_validation_steps, merge, pick_sources
from llada_cli.engine.runs.record import RunInfo, RunStage
from llada_cli.engine.runs.registry import Registry

CONFIG = ModelConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, seq_len=8)


def tensors(seed: int) -> dict[str, torch.Tensor]:
    """Stand-ins for a model's weights: merging reads tensors, it builds no model."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "embed_tokens.weight": torch.randn(16, 8, generator=generator),
        "norm.weight": torch.randn(8, generator=generator).to(torch.bfloat16),
    }


def make_run(
    registry: Registry,
    name: str,
    steps: tuple[int, ...] = (1, 2),
    kind: Kind = "ar",
    stage: RunStage = "pretrain",
    config: ModelConfig = CONFIG,
    tokenizer: bytes = b'{"vocab": 16}',
) -> Run:
    run = Run(registry.runs_dir / name)
    run.path.mkdir(parents=True)
    run.tokenizer_path.write_bytes(tokenizer)
    for step in steps:
        weights = tensors(seed=sum(map(ord, name)) * 100 + step)
        run.commit_checkpoint(
            step, lambda folder, w=weights: save_weights(config, w, folder / "model.safetensors")
        )
    run.write_info(
        RunInfo(name=name, kind=kind, stage=stage, model=config, parameters=136, total_steps=max(steps))
    )
    return run


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "home")


def test_merging_two_checkpoints_gives_the_mean_of_their_tensors_exactly(registry):
    make_run(registry, "a")
    make_run(registry, "b", steps=(3,))
    merged = merge(registry, pick_sources(registry, ["a@1", "b"]), "soup")
    first = read_tensors(registry.runs_dir / "a/checkpoints/step-0000001/model.safetensors")
    second = read_tensors(registry.runs_dir / "b/checkpoints/step-0000003/model.safetensors")
    result = read_tensors(merged.checkpoint_dir(3) / "model.safetensors")
    assert result.keys() == first.keys()
    for key, tensor in result.items():
        mean = ((first[key].float() + second[key].float()) / 2).to(first[key].dtype)
        assert tensor.dtype == first[key].dtype  # averaged in float32, stored as the sources are
        assert torch.equal(tensor, mean), key


def test_the_merged_run_records_its_sources_and_brings_their_tokenizer(registry):
    make_run(registry, "a", steps=(1, 2, 3), kind="diffusion", stage="sft")
    merged = merge(registry, pick_sources(registry, ["a@1", "a@3"]), "soup", command=["llada", "x"])
    info = merged.info()
    assert (info.kind, info.stage, info.status, info.step, info.total_steps) == (
        "diffusion",
        "sft",
        "completed",
        3,
        3,
    )
    assert info.merged_from == [{"run": "a", "step": 1}, {"run": "a", "step": 3}]
    assert info.train is None and info.origin == "merged" and info.command == ["llada", "x"]
    assert merged.checkpoint_steps() == [3]
    assert merged.tokenizer_path.read_bytes() == b'{"vocab": 16}'
    assert registry.children("a") == ["soup"]  # `runs rm a` names it


def write_metrics(run: Run, records: list[dict]) -> None:
    run.metrics_path.write_text("".join(json.dumps(record) + "\n" for record in records))


def test_top_k_val_takes_the_checkpoints_of_lowest_validation_loss(registry):
    run = make_run(registry, "a", steps=(2, 4, 6, 8, 10))
    write_metrics(
        run,
        [
            {"step": 1, "loss": 3.0, "val_loss": 0.1},  # no checkpoint at step 1 (pruned)
            {"step": 2, "loss": 3.0, "val_loss": 2.0},
            {"step": 4, "loss": 3.0, "val_loss": 1.5},
            {"step": 5, "loss": 3.0},
            {"step": 6, "loss": 3.0, "val_loss": 1.0},
            {"step": 8, "loss": 3.0, "val_loss": 1.5},  # ties step 4: the earlier step wins
            {"step": 10, "loss": 3.0},  # no validation at the last step
        ],
    )
    assert lowest_validation_steps(run, 2) == [4, 6]
    assert lowest_validation_steps(run, 1) == [6]
    sources = pick_sources(registry, ["a"], top_k_val=3)
    assert [source.label for source in sources] == ["a@4", "a@6", "a@8"]


def test_top_k_val_says_how_many_checkpoints_have_a_validation_loss(registry):
    run = make_run(registry, "a", steps=(2, 4))
    write_metrics(run, [{"step": 2, "val_loss": 1.0}, {"step": 3, "val_loss": 0.5}])
    with pytest.raises(
        UsageError, match=r"`top_k_val` 2 needs 2 checkpoints of run 'a' .* it has 1 \(step 2\)"
    ):
        lowest_validation_steps(run, 2)
    run.metrics_path.unlink()
    with pytest.raises(UsageError, match="it has none"):
        lowest_validation_steps(run, 1)


@pytest.mark.parametrize(
    ("other", "message"),
    [
        ({"kind": "diffusion"}, "cannot merge a@2 with b@2: an AR run and a diffusion run"),
        ({"stage": "sft"}, r"cannot merge a@2 with b@2: their stages differ \(pretrain vs sft\)"),
        (
            {"config": ModelConfig(**{**CONFIG.to_dict(), "hidden_size": 16})},
            r"models differ \(hidden_size 8 vs 16\)",
        ),
        ({"tokenizer": b'{"vocab": 17}'}, r"their tokenizers differ \(tokenizer.json\)"),
    ],
)
def test_sources_of_another_kind_stage_shape_or_tokenizer_are_refused(registry, other, message):
    make_run(registry, "a")
    make_run(registry, "b", **other)
    with pytest.raises(UsageError, match=message):
        merge(registry, pick_sources(registry, ["a", "b"]), "soup")
    assert registry.names() == ["a", "b"] and not (registry.runs_dir / "soup").exists()


@pytest.mark.parametrize(
    ("specs", "top_k_val", "message"),
    [
        (["a"], None, "a merge needs two or more checkpoints"),
        (["a@1", "a@1"], None, "checkpoint a@1 is given twice"),
        (["a@1", "a@5"], None, "run 'a' has no checkpoint at step 5; it has: 1, 2"),
        (["a", "a@1"], 2, "`top_k_val` picks the checkpoints of one run: give one run, not 2"),
        (["a@1"], 2, "`top_k_val` picks the steps of run 'a': give it without @1"),
        (["a"], 0, "`top_k_val` must be at least 1, got 0"),
    ],
)
def test_the_sources_must_name_distinct_checkpoints(registry, specs, top_k_val, message):
    make_run(registry, "a")
    with pytest.raises(UsageError, match=message):
        pick_sources(registry, specs, top_k_val)


def test_a_taken_name_needs_overwrite_and_a_source_is_never_replaced(registry):
    make_run(registry, "a")
    make_run(registry, "taken", steps=(7,))
    sources = pick_sources(registry, ["a@1", "a@2"])
    with pytest.raises(UsageError, match=r"run 'taken' already exists .* `overwrite` to replace it"):
        merge(registry, sources, "taken")
    with pytest.raises(
        UsageError, match="run 'a' is a source of the merge: give the merged run another `name`"
    ):
        merge(registry, sources, "a", overwrite=True)
    merged = merge(registry, sources, "taken", overwrite=True)
    assert merged.checkpoint_steps() == [2] and merged.info().merged_from is not None
    assert sorted(p.name for p in registry.runs_dir.iterdir()) == ["a", "taken"]  # nothing left aside


def test_a_source_named_by_its_folder_under_a_relative_home_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    registry = Registry(Path("home"))  # a relative --home: a folder source resolves to an absolute path
    make_run(registry, "a")
    sources = [Source(Run((tmp_path / "home" / "runs" / "a").resolve()), step) for step in (1, 2)]
    with pytest.raises(UsageError, match="run 'a' is a source of the merge"):
        merge(registry, sources, "a", overwrite=True)
    assert Run(registry.runs_dir / "a").checkpoint_steps() == [1, 2]


def test_a_source_is_a_run_and_one_of_its_steps(registry):
    make_run(registry, "a", steps=(1, 5))
    assert pick_sources(registry, ["a", "a@1"]) == [Source(Run(registry.runs_dir / "a"), s) for s in (5, 1)]
