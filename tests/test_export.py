"""`llada export`: an AR run loads in transformers with the same logits; any export imports back."""

from __future__ import annotations

import json

import pytest
import torch

from llada_cli import api
from tests.conftest import MICRO

IDS = torch.tensor([[5, 17, 42, 99, 3, 250, 7, 11]])


def _llada_logits(cli, run: str) -> torch.Tensor:
    return api.load(run, home=cli.home, device="cpu").logits(IDS)


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


@pytest.mark.parametrize(
    "shape",
    [[], ["--qk-norm", "--tie-embeddings", "--num-kv-heads", "1"], ["--inference-rope-scaling"]],
    ids=["llama", "qwen3", "yarn"],
)
def test_ar_export_loads_in_transformers_with_the_same_logits(cli, tmp_path, transformers, shape):
    cli.ok("pretrain", "ar", *MICRO, *shape, "--max-steps", "2", "--run-name", "ar")
    folder = tmp_path / "hf"
    assert cli.ok("export", "ar", str(folder)).stdout.strip() == str(folder)
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        theirs = hf(IDS).logits
    assert torch.allclose(theirs, _llada_logits(cli, "ar"), atol=1e-4)
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


def test_ar_export_imports_back_and_refuses_a_full_folder(cli, tmp_path):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "ar")
    folder = tmp_path / "out"
    cli.ok("export", "ar", str(folder))
    again = cli("export", "ar", str(folder))
    assert again.exit_code == 2 and "not empty" in again.stderr and "--overwrite" in again.stderr
    cli.ok("export", "ar", str(folder), "--overwrite")
    cli.ok("runs", "import", str(folder), "--name", "ar-back")
    assert torch.equal(_llada_logits(cli, "ar-back"), _llada_logits(cli, "ar"))
    assert not list(tmp_path.glob(".*partial"))
