"""`python -m llada_cli`: the same as the `llada` command."""

from .cli import main

main()
