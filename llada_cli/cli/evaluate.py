"""`llada eval RUN`: perplexity (AR) or ELBO bound (diffusion), and accuracy on the builtin benchmark
or a questions file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..engine.atomic import write_text_atomic
from ..engine.config import DataConfig
from ..engine.data.builtin import QUESTION_SETS, builtin_corpus
from ..engine.errors import LladaError, UsageError
from ..engine.evaluation.questions import Question, read_questions, reply_matches
from ..engine.run_options import CheckpointFileOptions, TokenizerOptions, WeightsOptions
from .common import (
    Globals,
    cli_errors,
    complete_run_name,
    counted,
    err,
    flag,
    globals_of,
    out,
    print_json,
    was_given,
)
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
        str,
        typer.Option(
            "--questions",
            help="builtin: the builtin benchmark's seen, forward and reverse questions; or a .jsonl of "
            '{"question", "answer", optional "split", "lang", "match": exact|contains|regex} rows.',
        ),
    ] = "builtin",
    no_questions: Annotated[
        bool, typer.Option("--no-questions", help="No accuracy: the likelihood only.")
    ] = False,
    with_likelihood: Annotated[
        bool,
        typer.Option("--likelihood/--no-likelihood", help="Perplexity (AR) or ELBO bound on held-out text."),
    ] = True,
    answer_length: Annotated[int, typer.Option(help="Tokens generated per answer.", min=1)] = 32,
    gen_ppl: Annotated[
        str | None,
        typer.Option(
            help="An AR run that scores samples of this one: their perplexity under it, and their "
            "unigram entropy (MDLM's sample quality).",
            autocompletion=complete_run_name,
        ),
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            help="lm-eval tasks (comma-separated names or task YAML paths), instead of the likelihood and "
            "the questions; needs the eval extra (lm-eval).",
        ),
    ] = None,
    include_path: Annotated[
        Path | None, typer.Option(help="--tasks: a folder of task YAMLs (lm-eval's --include_path).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="--tasks: at most this many rows a task.", min=1)] = None,
    chat: Annotated[
        bool,
        typer.Option(
            "--chat", help="--tasks: prompts in the run's chat template (lm-eval's --apply_chat_template)."
        ),
    ] = False,
    num_fewshot: Annotated[
        int | None, typer.Option(help="--tasks: few-shot examples a prompt.", min=0)
    ] = None,
    gen_samples: Annotated[int, typer.Option(help="--gen-ppl: samples written.", min=1, max=4096)] = 16,
    gen_tokens: Annotated[int, typer.Option(help="--gen-ppl: tokens a sample.", min=1)] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    *,
    data: Given[DataConfig],
    weights: Given[WeightsOptions],
    tokenizer: Given[TokenizerOptions],
    file: Given[CheckpointFileOptions],
) -> None:
    """Score a run: likelihood on held-out text, and accuracy on the builtin benchmark's question sets
    or on a questions file's."""
    # loads torch: here, not at the top, so that --help and shell completion stay quick
    from ..engine.evaluation.evaluate import heldout_likelihood

    if tasks is not None:
        harness(
            ctx,
            run,
            tasks,
            include_path,
            (limit, num_fewshot, mc_num, chat),
            as_json,
            tokenizer,
            file,
            weights,
        )
        return
    lm_eval_only = [name for name in ("include_path", "limit", "num_fewshot", "chat") if was_given(ctx, name)]
    if lm_eval_only:
        raise UsageError(f"{flag(lm_eval_only[0])} applies only with --tasks: add that, or drop it")
    if no_questions and not with_likelihood and gen_ppl is None:
        raise UsageError("--no-questions and --no-likelihood leave nothing to measure: drop one of them")
    if gen_ppl is None and (was_given(ctx, "gen_samples") or was_given(ctx, "gen_tokens")):
        raise UsageError(
            "--gen-samples and --gen-tokens apply only with --gen-ppl REF: add that, or drop them"
        )
    if no_questions and questions != "builtin":
        raise UsageError("--questions chooses the questions, which --no-questions leaves out: drop one")
    asked = None if no_questions else question_source(questions)
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
    if gen_ppl is not None:
        report["generative"] = generative(g, model, gen_ppl, gen_samples, gen_tokens)
    if asked is not None:
        report["questions"] = questions
        with counting("answering questions", g.verbosity) as on_progress:
            report["accuracy"] = accuracy(model, asked, answer_length, on_progress).to_dict()
    if as_json:
        print_json(report)
        return
    show(report)


def harness(
    ctx: typer.Context,
    run: str,
    tasks: str,
    include_path: Path | None,
    settings: tuple[int | None, int | None, int, bool],
    as_json: bool,
    tokenizer: Given[TokenizerOptions],
    file: Given[CheckpointFileOptions],
    weights: Given[WeightsOptions],
) -> None:
    """lm-eval's tasks on the run; the results saved in the run folder (`runs show` lists them)."""
    for name in (
        "questions",
        "no_questions",
        "with_likelihood",
        "gen_ppl",
        "data",
        "max_rows",
        "answer_length",
    ):
        if was_given(ctx, name):
            raise UsageError(
                f"--tasks runs lm-eval instead of the likelihood and the questions: drop {flag(name)}"
            )
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if not names:
        raise UsageError("--tasks: give one or more lm-eval task names, e.g. arc_easy,hellaswag")
    try:
        from ..harness import run_tasks
    except ImportError:
        raise LladaError("--tasks needs lm-eval: pip install 'llada-cli[eval]'") from None
    g = globals_of(ctx)
    model = load_given(g, run, tokenizer, file, weights)
    limit, num_fewshot, mc_num, chat = settings
    results = run_tasks(model, names, include_path, limit, num_fewshot, mc_num, g.seed, chat)
    report = {"run": model.name, "kind": model.kind, **results}
    if model.loaded.run is not None:
        saved = save_results(model.loaded.run.evals_dir, report)
        report["saved"] = str(saved)
    if as_json:
        print_json(report)
        return
    for task, metrics in report["results"].items():
        shown = ", ".join(
            f"{k.split(',')[0]} {v:.4f}"
            for k, v in metrics.items()
            if isinstance(v, float) and "stderr" not in k
        )
        out.print(f"[bold]{model.name}[/] {task}: {shown}", highlight=False)
    if "saved" in report:
        err.print(f"saved in {report['saved']}", highlight=False)


def save_results(folder: Path, report: dict[str, Any]) -> Path:
    """The report as evals/lm-eval-TIMESTAMP.json (atomic), with the time it was made."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = folder / f"lm-eval-{stamp}-{'-'.join(report['tasks'])[:80]}.json"
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({**report, "created": stamp}, indent=1, default=str))
    return path


def generative(g: Globals, model: api.Model, reference: str, samples: int, tokens: int) -> dict[str, Any]:
    """Samples of the run from a document boundary at temperature 1, scored by the reference AR run."""
    from .. import api
    from ..engine.evaluation.generative import generative_report

    judge = api.load(reference, device=g.device, home=g.home)
    if judge.kind != "ar":
        raise UsageError(
            f"--gen-ppl {reference} is a diffusion run: the reference must be an AR run (exact likelihoods)"
        )
    settings = model.settings(temperature=1.0, max_new_tokens=tokens)
    eos = model.tokenizer.decode([model.tokenizer.eos_id], skip_special_tokens=False)
    results = model.generate([eos] * samples, seed=g.seed, settings=settings)
    report = generative_report(
        [r.token_ids for r in results], model.tokenizer, judge.network, judge.tokenizer
    )
    return {"reference": judge.name, "temperature": 1.0, **report.to_dict()}


def question_source(source: str) -> list[Question]:
    """The builtin benchmark's questions (exact match), or a questions file's (read before any model
    is loaded)."""
    if source == "builtin":
        return [Question(q.question, q.answer, q.split, q.lang) for q in builtin_corpus().questions]
    return read_questions(Path(source).expanduser())


def accuracy(
    model: api.Model, questions: list[Question], answer_length: int, on_progress: OnProgress | None = None
) -> AccuracyReport:
    from ..engine.evaluation.evaluate import benchmark_accuracy  # loads torch, as in evaluate()

    def answer(prompts: list[str]) -> list[str]:  # the answer length: AR tokens, diffusion slots
        return [r.text for r in model.generate(prompts, chat=True, max_new_tokens=answer_length)]

    return benchmark_accuracy(questions, answer, reply_matches, on_progress)


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
    if "generative" in report:
        gen = report["generative"]
        out.print(
            f"{name} samples ({gen['samples']}, temperature 1): perplexity {gen['perplexity']:.2f} under "
            f"{gen['reference']}, unigram entropy {gen['unigram_entropy']:.2f} nats",
            highlight=False,
        )
    if "accuracy" in report:
        groups = report["accuracy"]
        splits = [g for g in groups if g != "all" and "/" not in g]
        sets = []
        for split in sorted(splits, key=lambda s: (QUESTION_SETS + (s,)).index(s)):  # builtin sets first
            langs = [
                f"{g.split('/', 1)[1]} {groups[g]['accuracy']:.0%}"
                for g in groups
                if g.startswith(split + "/")
            ]
            sets.append(
                f"{split} {groups[split]['accuracy']:.0%}" + (f" ({', '.join(langs)})" if langs else "")
            )
        out.print(f"{name} accuracy: " + " · ".join(sets), highlight=False)
