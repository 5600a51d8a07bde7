"""`llada export`: an AR run loads in transformers with the same logits; any export imports back."""

from __future__ import annotations

import json

import pytest
import torch

from llada_cli import api
from tests.conftest import MICRO
from tests.engine.runs.test_folder import limited_llada

IDS = torch.randint(3, 512, (1, 60), generator=torch.Generator().manual_seed(0))  # most of a 64-token row


def _llada_logits(cli, run: str) -> torch.Tensor:
    return api.load(run, home=cli.home, device="cpu").logits(IDS)


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


@pytest.mark.parametrize(
    ("shape", "architecture", "positions"),
    [
        ([], "LlamaForCausalLM", 64),
        (["--qk-norm", "--tie-embeddings", "--num-kv-heads", "1"], "Qwen3ForCausalLM", 64),
        (["--inference-rope-scaling"], "LlamaForCausalLM", 2048 * 16),  # YaRN's stretched length
    ],
    ids=["llama", "qwen3", "yarn"],
)
def test_ar_export_loads_in_transformers_with_the_same_logits(
    cli, tmp_path, transformers, shape, architecture, positions
):
    cli.ok("pretrain", "ar", *MICRO, *shape, "--max-steps", "2", "--run-name", "ar")
    folder = tmp_path / "hf"
    assert cli.ok("export", "ar", str(folder)).stdout.strip() == str(folder)
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    assert type(hf).__name__ == architecture and hf.config.max_position_embeddings == positions
    with torch.no_grad():
        theirs = hf(IDS).logits
    ours = _llada_logits(cli, "ar")
    assert torch.allclose(theirs, ours, atol=1e-4)
    resaved = tmp_path / "resaved"  # as transformers saves it (version 5: RoPE under rope_parameters)
    hf.save_pretrained(resaved)
    cli.ok("runs", "import", str(resaved), "-n", "resaved", "--tokenizer", str(folder / "tokenizer.json"))
    assert torch.equal(_llada_logits(cli, "resaved"), ours)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_diffusion_export_imports_back_to_the_same_logits(cli, tmp_path):
    cli.ok("pretrain", "diffusion", *MICRO, "--max-steps", "2", "--run-name", "dlm")
    folder = tmp_path / "dlm-hf"
    cli.ok("export", "dlm", str(folder))
    config = json.loads((folder / "config.json").read_text())
    assert config["llada"]["kind"] == "diffusion" and config["llada"]["attention"] == "bidirectional"
    assert (
        config["llada"]["mask_token_id"] is not None
        and "llada runs import" in (folder / "README.md").read_text()
    )
    cli.ok("runs", "import", str(folder), "--name", "back")
    info = json.loads((cli.home / "runs/back/run.json").read_text())
    assert info["kind"] == "diffusion"
    assert torch.equal(_llada_logits(cli, "back"), _llada_logits(cli, "dlm"))
    assert 'llada sample dlm --chat --prompt "Hello"' in (folder / "README.md").read_text()
    cli.ok("sample", "back", "--chat", "--prompt", "Hello", "--gen-length", "8")  # as the card says


def test_ar_export_imports_back_and_refuses_a_full_folder(cli, tmp_path, monkeypatch):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "ar")
    folder = tmp_path / "out"
    cli.ok("export", "ar", str(folder))
    again = cli("export", "ar", str(folder))
    assert again.exit_code == 2 and "not empty" in again.stderr and "--overwrite" in again.stderr
    cli.ok("export", "ar", str(folder), "--overwrite")
    cli.ok("runs", "import", str(folder), "--name", "ar-back")
    assert torch.equal(_llada_logits(cli, "ar-back"), _llada_logits(cli, "ar"))
    assert not list(tmp_path.glob(".*partial"))

    config = json.loads((folder / "config.json").read_text())  # Llama 3's RoPE: no llada equivalent
    config["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}
    (folder / "config.json").write_text(json.dumps(config))
    foreign = cli("runs", "import", str(folder), "--name", "llama3")
    assert foreign.exit_code == 1 and "RoPE scaling 'llama3'" in foreign.stderr

    notes = tmp_path / "notes"  # --overwrite replaces an earlier export, never other files
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    refused = cli("export", "ar", str(notes), "--overwrite")
    assert refused.exit_code == 2 and "not an earlier export" in refused.stderr
    assert (notes / "todo.txt").read_text() == "keep me"
    file = notes / "todo.txt"
    for args in ([], ["--overwrite"]):
        refused = cli("export", "ar", str(file), *args)
        assert (
            refused.exit_code == 2
            and refused.stderr
            == f"error: {file} is a file; export writes a folder: choose a new folder name\n"
        )
    assert file.read_text() == "keep me"

    here = tmp_path / "here"  # "." is the current folder
    here.mkdir()
    monkeypatch.chdir(here)
    cli.ok("export", "ar", ".")
    assert (here / "config.json").is_file() and not list(tmp_path.glob(".*partial"))


def test_export_refuses_a_yarn_ramp_transformers_computes_differently(cli, tmp_path):
    # head size 32, theta 100: the ramp's slow edge is pair 32 * ln(2048 / 2pi) / (2 ln 100) = 20.1,
    # past the last pair (15), where llada clamps and transformers does not
    yarn = ["--inference-rope-scaling", "--rope-theta", "100"]
    cli.ok("pretrain", "ar", *MICRO, *yarn, "--max-steps", "1", "--run-name", "ar")
    refused = cli("export", "ar", str(tmp_path / "out"))
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "--rope-theta 100" in refused.stderr and "--inference-rope-scaling" in refused.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (None, "not a model config"),
        ([1, 2], "not a model config"),
        ({"llada": "x"}, "not a model config"),
        ({"llada": {"kind": "gpt"}}, "llada.kind 'gpt' is not ar or diffusion"),
        ({"hidden_size": "64"}, "hidden_size must be an integer, got '64'"),
        ({"num_hidden_layers": 0}, "must be at least 1"),
    ],
)
def test_a_damaged_export_is_refused_in_one_line(cli, tmp_path, change, words):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "ar")
    folder = tmp_path / "hf"
    cli.ok("export", "ar", str(folder))
    config = folder / "config.json"
    damaged = change if not isinstance(change, dict) else {**json.loads(config.read_text()), **change}
    config.write_text(json.dumps(damaged))
    refused = cli("runs", "import", str(folder), "--name", "back")
    assert refused.exit_code == 1 and words in refused.stderr and "Traceback" not in refused.output
    assert len(refused.stderr.strip().splitlines()) == 1


def test_an_export_that_cannot_be_written_leaves_nothing(cli, tmp_path):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "ar")
    failed = limited_llada(cli.home, 300_000, "export", "ar", str(tmp_path / "hf"))
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith("error: File too large") and len(failed.stderr.splitlines()) == 1
    assert not (tmp_path / "hf").exists() and not (tmp_path / ".hf.partial").exists()
