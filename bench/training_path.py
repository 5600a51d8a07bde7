"""The path of one training request, from `llada pretrain diffusion --init-from AR` to the first
optimizer step, as a maintainer reads it (docs/configuration.md, "Who does what in training").

    python bench/training_path.py [--json] [--calls]

Runs a tiny AR pretraining, then profiles the diffusion continuation of it in-process and prints:
- run.json writes before step 1 (RunInfo.save calls);
- engine files entered before step 1;
- distinct calls from the orchestrators (the stages and lifecycle modules) into other files;
- calls between stages and lifecycle, either way (control bouncing between the two);
and, with --calls, each of those calls. The module names of earlier layouts are recognised, so
the same script measures an older checkout (PYTHONPATH=OLD_CHECKOUT python bench/training_path.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import llada_cli
from llada_cli.cli import app

TINY = ["--preset", "tiny", "--hidden-size", "64", "--num-hidden-layers", "2", "--num-attention-heads", "2"]
STEP = ["--batch-size", "4", "--dtype", "fp32", "--max-steps", "1"]
ORCHESTRATORS = {
    "engine/stages.py",
    "engine/lifecycle.py",
    "engine/training/stages.py",
    "engine/runs/lifecycle.py",
}
PACKAGE = str(Path(llada_cli.__file__).parent) + "/"


def measure() -> dict[str, Any]:
    home, runner = tempfile.mkdtemp(), CliRunner()
    ar = ["pretrain", "ar", *TINY, "--seq-len", "64", "--vocab-size", "512", *STEP, "--run-name", "ar"]
    assert runner.invoke(app, ["--home", home, *ar]).exit_code == 0
    seen: dict[str, Any] = {"stepped": False, "saves": 0, "files": set(), "calls": []}

    def profile(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if seen["stepped"] or event != "call":
            return
        if "torch/optim" in code.co_filename and code.co_name == "step":
            seen["stepped"] = True
            return
        here = _inside(code.co_filename)
        if here is None:
            return
        seen["files"] |= {here} if here.startswith("engine/") else set()
        seen["saves"] += code.co_name == "save" and here.endswith(("runinfo.py", "runs/record.py"))
        caller = _inside(frame.f_back.f_code.co_filename) if frame.f_back else None
        if caller in ORCHESTRATORS and caller != here and not code.co_name.startswith("<"):
            call = f"{caller}:{frame.f_back.f_code.co_name} -> {here}:{code.co_name}"
            seen["calls"] += [] if call in seen["calls"] else [call]

    diffusion = ["pretrain", "diffusion", "--init-from", "ar", *STEP, "--run-name", "dlm"]
    sys.setprofile(profile)
    result = runner.invoke(app, ["--home", home, *diffusion])
    sys.setprofile(None)
    assert result.exit_code == 0, result.output
    bounces = [c for c in seen["calls"] if "lifecycle" in c and c.count("stages") == 1]
    return {
        "run_json_writes": seen["saves"],
        "engine_files": len(seen["files"]),
        "orchestrator_calls": len(seen["calls"]),
        "stages_lifecycle_calls": len(bounces),
        "calls": seen["calls"],
    }


def _inside(path: str) -> str | None:
    return path[len(PACKAGE) :] if path.startswith(PACKAGE) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--calls", action="store_true", help="also list the orchestrators' calls")
    args = parser.parse_args()
    report = measure()
    if args.json:
        print(json.dumps(report if args.calls else {k: v for k, v in report.items() if k != "calls"}))
        return
    print(f"run.json writes before step 1:                 {report['run_json_writes']}")
    print(f"engine files entered before step 1:            {report['engine_files']}")
    print(f"calls from stages/lifecycle into other files:  {report['orchestrator_calls']}")
    print(f"calls between stages and lifecycle:            {report['stages_lifecycle_calls']}")
    for call in report["calls"] if args.calls else []:
        print(f"  {call}")


if __name__ == "__main__":
    main()
