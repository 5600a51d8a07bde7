"""lm-evaluation-harness for llada runs (docs/eval.md): an `lm_eval` model class, "llada".

    llada eval dlm-chat --tasks arc_easy --limit 100            # through llada
    python -m llada_cli.harness --model llada --model_args run=dlm-chat --tasks arc_easy

The three request types of lm-eval:
- `loglikelihood(context, continuation)`: AR exact, `log p(continuation | context)`; diffusion LLaDA's
  Monte Carlo ELBO of the continuation with the context unmasked (`mc_num` samples, stratified mask
  counts), a lower bound. `is_greedy`: AR, every continuation token is the argmax after the tokens
  before it; diffusion, with the whole continuation masked, every slot's argmax is its token (one
  pass: LLaDA's convention has no exact greedy decoding to compare with).
- `loglikelihood_rolling(text)`: the same of the whole text after an EOS (a document boundary).
- `generate_until(context, {"until", "max_gen_toks"})`: the run's default sampler (as `llada sample`),
  the answer cut before the first stop string.
Context and continuation are tokenized apart, so the continuation's tokens are the same whatever
the context ends with (LLaDA's own lm-eval adapter does the same).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from . import api
from .engine.errors import UsageError
from .engine.evaluation.evaluate import answer_log_likelihood
from .engine.sampling.common import cut_at_stops


@register_model("llada")
class LladaLM(LM):
    def __init__(
        self,
        run: str | api.Model,
        home: str | None = None,
        device: str = "auto",
        mc_num: int = 128,
        max_gen_toks: int = 128,
        seed: int = 0,
        **_: Any,  # lm-eval passes batch_size and device options every model takes
    ) -> None:
        super().__init__()
        self.model = run if isinstance(run, api.Model) else api.load(run, device=device, home=home)
        self.mc_num, self.max_gen_toks, self.seed = int(mc_num), int(max_gen_toks), int(seed)

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> LladaLM:
        from lm_eval.utils import simple_parse_args_string

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict[str, Any], additional_config: dict | None = None) -> LladaLM:
        """From lm-eval's `--model_args` alone: its `--device` (cuda unless told otherwise) and
        `--batch_size` are not this class's; give `device=` in `--model_args` (default auto)."""
        return cls(**arg_dict)

    def _log_likelihood(self, context: list[int], continuation: list[int]) -> float:
        model = self.model
        return answer_log_likelihood(
            model.network, model.kind, context, continuation, model.tokenizer.mask_id, self.mc_num, self.seed
        )

    @torch.inference_mode()
    def _greedy(self, context: list[int], continuation: list[int]) -> bool:
        model = self.model
        if not continuation:
            return True
        if model.kind == "ar":
            ids = torch.tensor([context + continuation[:-1]], device=model.device)
        else:
            mask = model.tokenizer.diffusion_mask_id
            ids = torch.tensor([context + [mask] * len(continuation)], device=model.device)
        guesses = model.network(ids)[0, len(context) - (model.kind == "ar") :].argmax(dim=-1)
        return guesses[: len(continuation)].tolist() == continuation

    @property
    def tokenizer_name(self) -> str:
        return self.model.name

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """The run's chat template (ChatML), for `--chat` (lm-eval's --apply_chat_template)."""
        return self.model.tokenizer.chat_text(chat_history, add_generation_prompt=add_generation_prompt)

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        encode = self.model.tokenizer.encode
        scored = []
        for context, continuation in (r.args for r in requests):
            # an empty context: the document boundary, as lm-eval's HF model reads one
            ids, answer = encode(context) or [self.model.tokenizer.eos_id], encode(continuation)
            scored.append((self._log_likelihood(ids, answer), self._greedy(ids, answer)))
        return scored

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        tokenizer = self.model.tokenizer
        return [self._log_likelihood([tokenizer.eos_id], tokenizer.encode(r.args[0])) for r in requests]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        answers = []
        for context, options in (r.args for r in requests):
            until = options.get("until") or []
            stops = (until,) if isinstance(until, str) else tuple(until)
            length = int(options.get("max_gen_toks", self.max_gen_toks))
            room = self.model.context_length - len(self.model.encode_prompt(context))
            [result] = self.model.generate(context, seed=self.seed, max_new_tokens=max(1, min(length, room)))
            answers.append(cut_at_stops(result.text, stops))
        return answers


def task_names(tasks: list[str], include_path: Path | None) -> tuple[list[str], list[str]]:
    """The task names and the folders of task YAMLs lm-eval must read: a task given as the path of
    its YAML is named by its `task` key, and its folder is read."""
    folders = [str(include_path)] if include_path is not None else []
    names = []
    for task in tasks:
        path = Path(task).expanduser()
        if path.suffix in (".yaml", ".yml"):
            if not path.is_file():
                raise UsageError(f"task file {path} does not exist")
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
            if not isinstance(spec, dict) or not isinstance(spec.get("task"), str):
                raise UsageError(f"{path}: a task YAML names its task under `task:`")
            names.append(spec["task"])
            folders.append(str(path.parent.resolve()))
        else:
            names.append(task)
    return names, folders


def run_tasks(
    model: api.Model,
    tasks: list[str],
    include_path: Path | None = None,
    limit: int | None = None,
    num_fewshot: int | None = None,
    mc_num: int = 128,
    seed: int = 0,
    chat: bool = False,
) -> dict[str, Any]:
    """lm-eval's `simple_evaluate` of `tasks` on the run (`chat`: prompts in its chat template):
    {"tasks", "results" (lm-eval's, per task), "settings"}; an unknown task is refused."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    names, folders = task_names(tasks, include_path)
    manager = TaskManager(include_path=folders or None)
    unknown = [name for name in names if name not in manager.all_tasks]
    if unknown:
        raise UsageError(
            f"lm-eval has no task {', '.join(unknown)}: give its name, its YAML, or --include-path DIR"
        )
    output = simple_evaluate(
        model=LladaLM(model, mc_num=mc_num, seed=seed),
        tasks=names,
        task_manager=manager,
        limit=limit,
        num_fewshot=num_fewshot,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
        apply_chat_template=chat,
    )
    settings = {"limit": limit, "num_fewshot": num_fewshot, "mc_num": mc_num, "seed": seed, "chat": chat}
    return {"tasks": names, "results": output["results"], "settings": settings}


def main() -> None:
    """lm-eval's own command line, with the "llada" model registered (lm-eval has no plugin hook)."""
    from lm_eval.__main__ import cli_evaluate

    sys.argv[0] = "lm_eval"
    cli_evaluate()


if __name__ == "__main__":
    main()
