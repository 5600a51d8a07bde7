"""The stable Python API: train a run, merge checkpoints, load a run, generate, read logits, score answers.

    from llada_cli import api
    api.train("pretrain ar", "ar", preset="tiny", max_steps=200)
    api.train("pretrain diffusion", "dlm", init_from="ar", max_steps=200)
    api.merge("dlm", "dlm-top2", top_k_val=2)     # the mean of its 2 checkpoints of lowest val loss
    model = api.load("dlm")                       # a run name, name@step or a run folder
    [result] = model.generate("The capital of France is", gen_length=16)
    print(result.text, result.forward_passes)

The CLI's `sample`, `compare` and `eval` are built on this module; its training commands and
`train` on the same engine call (training/stages.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .engine.config import Kind, Stage
from .engine.errors import UsageError, named
from .engine.evaluation.evaluate import answer_log_likelihood
from .engine.interchange.files import EXTERNAL_SUFFIXES
from .engine.interchange.imported_runs import external_run, is_checkpoint_file
from .engine.options import option_names
from .engine.runs.loaded import LoadedRun, load_run
from .engine.runs.merge import merge as merge_runs
from .engine.runs.merge import pick_sources
from .engine.runs.record import a_kind
from .engine.runs.registry import Registry, default_home
from .engine.runtime.device import compile_blocks, resolve_device
from .engine.sampling.ar import generate_ar
from .engine.sampling.common import Generation, TraceEvent, model_context
from .engine.sampling.diffusion import generate_diffusion
from .engine.sampling.infill import generate_infill, infill_settings, infill_template
from .engine.sampling.settings import ARSettings, DiffusionSettings, resolve_ar_settings, resolve_settings
from .engine.training.request import request_from_options
from .engine.training.stages import run_stage
from .engine.training.trainer import TrainEvent

EMPTY_ANSWER = "the model ended the answer at once: its first answer token is an end token"


@dataclass
class Result:
    prompt: str
    text: str
    token_ids: list[int]
    prompt_tokens: int
    forward_passes: int
    steps: int
    seconds: float
    finished: bool
    note: str | None = None  # why an answer is empty

    @property
    def new_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def tokens_per_forward(self) -> float:
        return self.new_tokens / max(1, self.forward_passes)

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / max(1e-9, self.seconds)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            new_tokens=self.new_tokens,
            tokens_per_forward=round(self.tokens_per_forward, 3),
            tokens_per_second=round(self.tokens_per_second, 2),
        )
        return data


class Model:
    """A loaded run: an AR or a diffusion model with its tokenizer."""

    def __init__(self, loaded: LoadedRun, device: torch.device) -> None:
        self.loaded = loaded
        self.device = device
        self.network = loaded.model.to(device).eval()
        self.tokenizer = loaded.tokenizer
        self.kind: Kind = loaded.kind
        self.name = loaded.label
        self.compiled = False
        self.warnings: list[str] = []  # one line each, for the caller to show

    @property
    def context_length(self) -> int:
        return model_context(self.network)

    def encode_prompt(self, prompt: str, chat: bool = False, system: str | None = None) -> list[int]:
        if system is not None and not chat:
            raise UsageError(
                f"{named('system')} is a message of the chat template, which {named('chat')} turns on: "
                f"add {named('chat')}, or drop {named('system')}"
            )
        if chat:
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": prompt})
            prompt = self.tokenizer.chat_text(messages, add_generation_prompt=True)
        ids = self.tokenizer.encode(prompt)
        if len(ids) >= self.context_length:
            raise UsageError(
                f"prompt has {len(ids)} tokens, more than the model's context of "
                f"{self.context_length} tokens ({self.name}); shorten it"
            )
        return ids

    def settings(self, **options: Any) -> ARSettings | DiffusionSettings:
        """Sampler settings from keyword options; an option of the other kind is a usage error."""
        options = dict(options)
        # the answer length has one name per kind; accept either (the seed scripts use --max-new-tokens)
        own, other = ("max_new_tokens", "gen_length")
        if self.kind == "diffusion":
            own, other = other, own
        if other in options and own in options:
            raise UsageError(f"{named(own)} and {named(other)} both set the answer length: give one")
        if other in options:
            options[own] = options.pop(other)
        cls = ARSettings if self.kind == "ar" else DiffusionSettings
        wrong = sorted(set(options) - option_names(cls))
        if wrong:
            names = ", ".join(named(name) for name in wrong)
            raise UsageError(
                f"{names}: not an option of {self.kind} sampling ({self.name} is {a_kind(self.kind)} run)"
            )
        settings = cls(**{**self.sampling_defaults(), **options})
        if isinstance(settings, DiffusionSettings):
            resolve_settings(settings)  # check the couplings now; the length is fitted to the prompts later
        return settings

    def sampling_defaults(self) -> dict[str, Any]:
        """What this run samples with unless told otherwise: a block-diffusion run decodes as it was
        trained, block-causally in its last block size, appending blocks, with the exact cache."""
        info = self.loaded.info
        block = info.objective.decoding_block(info.total_steps, info.seq_len) if info.objective else None
        if self.kind != "diffusion" or block is None:
            return {}
        return {
            "method": "semi_ar_origin",
            "attention": "block_causal",
            "block_length": block,
            "cache": "prefix",
        }

    def fitted(
        self,
        settings: ARSettings | DiffusionSettings,
        prompts: list[str],
        chat: bool = False,
        system: str | None = None,
    ) -> ARSettings | DiffusionSettings:
        """`settings` with every default filled in as generate() will for these prompts: the answer
        length is what the context leaves after the longest one, the sampler the run's default."""
        return self._fitted(settings, [self.encode_prompt(p, chat, system) for p in prompts])

    def _fitted(
        self, settings: ARSettings | DiffusionSettings, ids: list[list[int]]
    ) -> ARSettings | DiffusionSettings:
        room = self.context_length - max(len(i) for i in ids)
        if isinstance(settings, ARSettings):
            return resolve_ar_settings(settings, room)
        return resolve_settings(settings, room)

    @torch.inference_mode()
    def generate(
        self,
        prompts: str | list[str],
        *,
        chat: bool = False,
        system: str | None = None,
        seed: int = 0,
        on_step: Any = None,
        trace: list[TraceEvent] | None = None,
        settings: ARSettings | DiffusionSettings | None = None,
        **options: Any,
    ) -> list[Result]:
        """Answers for one prompt or a batch (padded together, not one by one), with sampler
        `options` by keyword, or `settings` already made by `self.settings`."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise UsageError("no prompt given")
        if settings is None:
            settings = self.settings(**options)
        elif options:
            raise UsageError(f"give sampler options or settings, not both: {', '.join(sorted(options))}")
        elif isinstance(settings, ARSettings) != (self.kind == "ar"):
            raise UsageError(
                f"sampler settings of the other kind: {self.name} is {a_kind(self.kind)} run; "
                "make them with its settings()"
            )
        ids = [self.encode_prompt(p, chat, system) for p in prompts]
        settings = self._fitted(settings, ids)
        if settings.compile and not self.compiled:
            self.compiled = True
            fallback = compile_blocks(self.network)
            self.warnings += [fallback] if fallback else []
        generator = torch.Generator().manual_seed(seed)
        stops = {self.tokenizer.eos_id, self.tokenizer.im_end_id}
        if isinstance(settings, ARSettings):  # of this run's kind
            generations = generate_ar(self.network, ids, settings, stops, generator, on_step=on_step)
        else:
            generations = generate_diffusion(
                self.network,
                ids,
                settings,
                self.tokenizer.diffusion_mask_id,
                stops,
                generator,
                on_step=on_step,
                trace=trace,
            )
        return [self._result(p, i, g) for p, i, g in zip(prompts, ids, generations, strict=True)]

    @torch.inference_mode()
    def infill(self, templates: str | list[str], *, seed: int = 0, **options: Any) -> list[Result]:
        """Each template's slots (`[MASK:n]`, `[MASK]`) filled by the diffusion model, the text around
        them kept and seen on both sides (docs/algorithms.md section 7); sampler `options` by keyword
        (temperature, top_k, remasking, threshold, max_decode_per_step, exact, steps, suppress_eos,
        eos_confidence)."""
        if self.kind != "diffusion":
            raise UsageError(
                f"infilling needs a diffusion run: {self.name} is an AR run, which writes left to right"
            )
        templates = [templates] if isinstance(templates, str) else list(templates)
        if not templates:
            raise UsageError("no template given")
        wrong = sorted(set(options) - option_names(DiffusionSettings))
        if wrong:
            raise UsageError(f"{', '.join(named(n) for n in wrong)}: not an option of diffusion sampling")
        settings = infill_settings(DiffusionSettings(**options))
        mask_id = self.tokenizer.diffusion_mask_id
        rows = [infill_template(text, self.tokenizer, mask_id) for text in templates]
        stops = {self.tokenizer.eos_id, self.tokenizer.im_end_id}
        generator = torch.Generator().manual_seed(seed)
        filled = generate_infill(
            self.network, rows, settings, mask_id, stops, self.tokenizer.eos_id, generator
        )
        return [
            replace(
                self._result(text, [i for i, slot in zip(*row, strict=True) if not slot], generation),
                text=self.tokenizer.decode(ids).strip(),
            )
            for text, row, (ids, generation) in zip(templates, rows, filled, strict=True)
        ]

    def _result(self, prompt: str, prompt_ids: list[int], generation: Generation) -> Result:
        empty = generation.finished and not generation.token_ids
        return Result(
            prompt=prompt,
            text=self.tokenizer.decode(generation.token_ids).strip(),
            token_ids=list(generation.token_ids),
            prompt_tokens=len(prompt_ids),
            forward_passes=generation.forward_passes,
            steps=generation.steps,
            seconds=generation.seconds,
            finished=generation.finished,
            note=EMPTY_ANSWER if empty else None,
        )

    @torch.inference_mode()
    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Raw logits (B, L, V) of the network for a batch of token ids."""
        return self.network(input_ids.to(self.device)).float()

    def score(
        self, prompt: str, answer: str, *, chat: bool = False, mc_num: int = 128, seed: int = 0
    ) -> float:
        """log p(answer | prompt): exact for AR, a Monte Carlo ELBO (a lower bound) for diffusion."""
        prompt_ids = self.encode_prompt(prompt, chat)
        answer_ids = self.tokenizer.encode(answer)
        return answer_log_likelihood(
            self.network,
            self.kind,
            prompt_ids,
            answer_ids,
            mask_id=self.tokenizer.mask_id,
            mc_num=mc_num,
            seed=seed,
        )


def load(
    run_or_path: str | Path,
    device: str = "auto",
    home: str | Path | None = None,
    tokenizer: str | Path | None = None,
    seq_len: int | None = None,
    ema: bool | None = None,
) -> Model:
    """A run (name, name@step, run folder) or an external checkpoint file (with its tokenizer.json and,
    when the file does not say, its context length). `ema`: a run's moving average of the weights
    (kept with --ema-decay) or, False, the weights themselves; None: the average where there is one."""
    target = resolve_device(device)
    if is_checkpoint_file(str(run_or_path)):
        if ema is not None:
            raise UsageError(
                f"{named('ema')} chooses among a run's weights; a checkpoint file has one: drop it"
            )
        loaded = external_run(
            Path(run_or_path).expanduser(), Path(tokenizer) if tokenizer else None, seq_len=seq_len
        )
        return Model(replace(loaded, model=loaded.model.to(target)), target)
    registry = Registry(Path(home) if home else default_home())
    run, step = registry.resolve(str(run_or_path))
    if Path(str(run_or_path)).suffix not in EXTERNAL_SUFFIXES:  # a Nano-LLaDA file name may stand for a run
        _refuse_file_options(run.name, tokenizer, seq_len)
    return Model(load_run(run, step, device=str(target), ema=ema), target)


def _refuse_file_options(name: str, tokenizer: str | Path | None, seq_len: int | None) -> None:
    """What only a checkpoint file needs said has no effect on a run, which records both."""
    if tokenizer is not None:
        raise UsageError(
            f"{named('tokenizer')} (or {named('tokenizer_dir')}) is for a checkpoint file; run '{name}' "
            "brings its own tokenizer: drop it"
        )
    if seq_len is not None:
        raise UsageError(
            f"{named('seq_len')} is for a checkpoint file that does not say its context; run '{name}' "
            "records its own: drop it"
        )


TRAINING_COMMANDS: dict[str, tuple[Kind | None, Stage]] = {
    "pretrain ar": ("ar", "pretrain"),
    "pretrain diffusion": ("diffusion", "pretrain"),
    "sft": (None, "sft"),  # of the base run's kind
    "dpo": (None, "dpo"),
    "grpo": (None, "grpo"),
}


def train(
    command: str,
    run_name: str,
    *,
    init_from: str | None = None,
    base: str | None = None,
    home: str | Path | None = None,
    on_event: Callable[[TrainEvent], None] | None = None,
    **options: Any,
) -> Path:
    """Train a run as `llada pretrain ar|diffusion`, `sft`, `dpo` and `grpo` do; return its folder.

    `command` is "pretrain ar", "pretrain diffusion", "sft", "dpo" or "grpo"; every option of that
    command is a keyword named as its flag with underscores (preset="tiny", max_steps=200, learning_rate=1e-3,
    resume=True, ...). `on_event` receives the trainer's events (start, log, eval, checkpoint, end).
    """
    if command not in TRAINING_COMMANDS:
        raise UsageError(f"command {command!r} is unknown: use one of {', '.join(TRAINING_COMMANDS)}")
    kind, stage = TRAINING_COMMANDS[command]
    if init_from is not None and command != "pretrain diffusion":
        raise UsageError(f"{named('init_from')} is an option of pretrain diffusion, not of {command}")
    if base is not None and stage == "pretrain":
        raise UsageError(f"{named('base')} is an option of sft, dpo and grpo, not of {command}")
    for name in ("tokenizer", "tokenizer_dir"):  # paths, as the command line parses them
        if options.get(name) is not None:
            options[name] = Path(options[name]).expanduser()
    request = request_from_options(
        kind, stage, {"run_name": run_name, **options}, init_from or base, ["llada.api.train", command]
    )
    registry = Registry(Path(home) if home else default_home())
    return run_stage(registry, request, on_event=on_event).path


def merge(
    sources: str | list[str],
    name: str,
    *,
    top_k_val: int | None = None,
    overwrite: bool = False,
    home: str | Path | None = None,
) -> Path:
    """A new run whose weights are the mean of checkpoints, as `llada runs merge` makes it, and its
    folder. `sources`: runs (name@step, or a name for its latest checkpoint), or one run with
    `top_k_val` K for its K checkpoints of lowest validation loss."""
    specs = [sources] if isinstance(sources, str) else list(sources)
    registry = Registry(Path(home) if home else default_home())
    picked = pick_sources(registry, specs, top_k_val)
    return merge_runs(registry, picked, name, overwrite, ["llada.api.merge", *specs]).path
