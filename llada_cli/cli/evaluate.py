"""`llada eval RUN`: perplexity (AR) or ELBO bound (diffusion), and accuracy on the builtin benchmark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..engine.config import DataConfig
from ..engine.data.builtin import QUESTION_SETS, answer_matches, builtin_corpus
from ..engine.errors import UsageError
from ..engine.run_options import CheckpointFileOptions, TokenizerOptions, WeightsOptions
from .common import cli_errors, complete_run_name, counted, flag, globals_of, out, print_json
from .options import Given, Group, with_configs
from .progress import counting
from .sample import WEIGHTS_GROUP, load_given

if TYPE_CHECKING:
    from .. import api
    from ..engine.evaluation.evaluate import AccuracyReport, OnProgress


# eval has no --gen-length or --max-new-tokens of its own: the answer length is --answer-length
@cli_errors(flags={"gen_length": "--answer-length", "max_new_tokens": "--answer-length"})
@with_configs(
    data=Group(
        DataConfig,
        "Likelihood",
        skip=frozenset({"val_fraction"}),  # the run's own split decides what is held out
        help={"data": "Text source for the likelihood: builtin, minimind or a file."},
    ),
    weights=WEIGHTS_GROUP,
    tokenizer=Group(TokenizerOptions, "Checkpoint files"),
    file=Group(CheckpointFileOptions, "Checkpoint files"),
)
def evaluate(
    ctx: typer.Context,
    run: Annotated[
        str,
        typer.Argument(
            help="Run name, name@step, folder or checkpoint file.", autocompletion=complete_run_name
        ),
    ],
    max_rows: Annotated[int, typer.Option(help="Validation rows scored.", min=1)] = 32,
    mc_num: Annotated[int, typer.Option(help="Diffusion: Monte Carlo samples per row.", min=1)] = 16,
    questions: Annotated[
        bool,
        typer.Option(
            "--questions/--no-questions",
            help="The builtin benchmark: exact-match accuracy on seen, forward and reverse questions.",
        ),
    ] = True,
    with_likelihood: Annotated[
        bool,
        typer.Option("--likelihood/--no-likelihood", help="Perplexity (AR) or ELBO bound on held-out text."),
    ] = True,
    answer_length: Annotated[int, typer.Option(help="Tokens generated per answer.", min=1)] = 32,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    *,
    data: Given[DataConfig],
    weights: Given[WeightsOptions],
    tokenizer: Given[TokenizerOptions],
    file: Given[CheckpointFileOptions],
) -> None:
    """Score a run: likelihood on held-out text, and accuracy on the builtin benchmark's question sets."""
    # loads torch: here, not at the top, so that --help and shell completion stay quick
    from ..engine.evaluation.evaluate import heldout_likelihood

    if not (questions or with_likelihood):
        raise UsageError("--no-questions and --no-likelihood leave nothing to measure: drop one of them")
    g = globals_of(ctx)
    if data.names and not with_likelihood:
        given = " and ".join(flag(name) for name in sorted(data.names))
        raise UsageError(f"{given} choose the likelihood's text, which --no-likelihood leaves out: drop one")
    source = data.build()
    if "jsonl_field" in data.names:
        source.check_field_applies()
    model = load_given(g, run, tokenizer, file, weights)
    report: dict[str, Any] = {"run": model.name, "kind": model.kind, "data": source.data}
    if with_likelihood:
        with counting("scoring held-out rows", g.verbosity) as on_progress:
            likelihood = heldout_likelihood(
                g.registry, model.loaded, source, max_rows, mc_num, g.seed, on_progress
            )
        report["likelihood"] = likelihood.to_dict()
    if questions:
        with counting("answering questions", g.verbosity) as on_progress:
            report["accuracy"] = accuracy(model, answer_length, on_progress).to_dict()
    if as_json:
        print_json(report)
        return
    show(report)


def accuracy(model: api.Model, answer_length: int, on_progress: OnProgress | None = None) -> AccuracyReport:
    from ..engine.evaluation.evaluate import benchmark_accuracy  # loads torch, as in evaluate()

    option = "max_new_tokens" if model.kind == "ar" else "gen_length"  # the answer length of its kind
    length: dict[str, Any] = {option: answer_length}

    def answer(prompts: list[str]) -> list[str]:
        return [r.text for r in model.generate(prompts, chat=True, **length)]

    return benchmark_accuracy(builtin_corpus().questions, answer, answer_matches, on_progress)


def show(report: dict[str, Any]) -> None:
    """One line for the likelihood, one for the three question sets (en / zh in brackets)."""
    name = f"[bold]{report['run']}[/] ({report['kind']})"
    if "likelihood" in report:
        lik = report["likelihood"]
        what = "perplexity" if lik["exact"] else "perplexity bound (ELBO)"
        out.print(
            f"{name} on {report['data']}: {lik['bits_per_token']:.3f} bits/token, "
            f"{what} {lik['perplexity']:.2f} over {counted(lik['tokens'], 'token')}",
            highlight=False,
        )
    if "accuracy" in report:
        acc = {group: f"{row['accuracy']:.0%}" for group, row in report["accuracy"].items()}
        sets = [f"{s} {acc[s]} (en {acc[s + '/en']}, zh {acc[s + '/zh']})" for s in QUESTION_SETS]
        out.print(f"{name} accuracy: " + " · ".join(sets), highlight=False)
