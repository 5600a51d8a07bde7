"""lm-evaluation-harness (llada_cli/harness.py, `llada eval --tasks`) on local task YAMLs over local
jsonl files: a multiple-choice task scores as the run's own likelihoods pick, a generation task
agrees with `llada eval --questions` on the same rows, results are saved and shown."""

from __future__ import annotations

import json

import pytest

from llada_cli import api
from llada_cli.engine.evaluation.evaluate import answer_log_likelihood

pytest.importorskip("lm_eval")

MC_TASK = """task: llada_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
"""
GEN_TASK = """task: llada_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: []
  max_gen_toks: 8
metric_list:
  - metric: exact_match
"""
MC_ROWS = [
    {"question": "The capital of Ninaria is", "choices": [" Tidar.", " Veni.", " Tarn."], "answer": 0},
    {"question": "Who are you?", "choices": [" A model.", " A cat."], "answer": 1},
    {"question": "Hello", "choices": [" Hi!", " Bye.", " What?"], "answer": 2},
]


def write_task(folder, template: str, rows: list[dict]) -> str:
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = folder / "task.yaml"
    path.write_text(template.format(data=data), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("run", ["ar-chat", "dlm-chat"])
def test_a_multiple_choice_task_picks_the_choice_of_highest_likelihood(pipeline, tmp_path, run):
    task = write_task(tmp_path, MC_TASK, MC_ROWS)
    doc = json.loads(pipeline.ok("eval", run, "--tasks", task, "--mc-num", "4", "--json").stdout)
    model = api.load(run, home=pipeline.home, device="cpu")
    encode = model.tokenizer.encode
    right = 0
    for row in MC_ROWS:
        scores = [
            answer_log_likelihood(
                model.network, model.kind, encode(row["question"]), encode(c), model.tokenizer.mask_id, 4
            )
            for c in row["choices"]
        ]
        right += scores.index(max(scores)) == row["answer"]
    assert doc["results"]["llada_mc"]["acc,none"] == pytest.approx(right / len(MC_ROWS))
    shown = pipeline.ok("runs", "show", run).stdout
    assert "lm-eval" in shown and "llada_mc acc" in shown
    assert json.loads(pipeline.ok("runs", "show", run, "--json").stdout)["evals"][-1]["tasks"] == ["llada_mc"]


def test_a_generation_task_agrees_with_eval_questions_on_the_same_rows(pipeline, tmp_path):
    model = api.load("dlm-chat", home=pipeline.home, device="cpu")
    questions = ["Hello", "Who are you?", "What is the capital of Ninaria?", "Hi there"]
    replies = [r.text for r in model.generate(questions, chat=True, gen_length=8)]
    # half the rows expect the run's own reply, half an answer no reply is
    rows = [
        {"question": q, "answer": r if i % 2 == 0 else "qqqq zzzz"}
        for i, (q, r) in enumerate(zip(questions, replies, strict=True))
    ]
    task = write_task(tmp_path, GEN_TASK, rows)
    doc = json.loads(pipeline.ok("eval", "dlm-chat", "--tasks", task, "--chat", "--json").stdout)
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({**r, "match": "contains"}) + "\n" for r in rows), encoding="utf-8")
    ours = json.loads(
        pipeline.ok(
            "eval", "dlm-chat", "--questions", str(mine), "--no-likelihood", "--answer-length", "8", "--json"
        ).stdout
    )
    assert doc["results"]["llada_gen"]["exact_match,none"] == ours["accuracy"]["all"]["accuracy"] == 0.5


def test_unknown_tasks_and_options_without_tasks_are_refused(pipeline, tmp_path):
    result = pipeline("eval", "ar-chat", "--tasks", "no_such_task_anywhere")
    assert result.exit_code == 2 and "lm-eval has no task no_such_task_anywhere" in result.output
    result = pipeline("eval", "ar-chat", "--limit", "3")
    assert result.exit_code == 2 and "applies only with --tasks" in result.output
    result = pipeline("eval", "ar-chat", "--tasks", "x", "--questions", "q.jsonl")
    assert result.exit_code == 2 and "instead of the likelihood and the questions" in result.output


def test_lm_evals_own_command_line_builds_the_model_from_model_args_alone(pipeline):
    from llada_cli.harness import LladaLM

    lm = LladaLM.create_from_arg_string(
        f"run=ar-chat,home={pipeline.home},mc_num=8", {"device": "cuda", "batch_size": 4}
    )
    assert lm.model.device.type == "cpu" and lm.mc_num == 8  # lm-eval's --device cuda default is not read
