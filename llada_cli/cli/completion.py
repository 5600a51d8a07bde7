"""Shell completion scripts for completions/ (generated from the app; a test keeps them current).

python -m llada_cli.cli.completion          # rewrite completions/llada.{bash,zsh,fish}
"""

from __future__ import annotations

from pathlib import Path

from typer._completion_shared import get_completion_script

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_LLADA_COMPLETE"


def completion_script(shell: str) -> str:
    return get_completion_script(prog_name="llada", complete_var=COMPLETE_VAR, shell=shell) + "\n"


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for shell in SHELLS:
        path = folder / f"llada.{shell}"
        path.write_text(completion_script(shell), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all(Path(__file__).resolve().parents[2] / "completions"):
        print(written)
