"""`python -m llada_cli` (also `torchrun -m llada_cli ...`)."""

from llada_cli.cli import main

main()
