"""The options of the training objectives: one config class per (kind, stage).

Declared apart from the objectives that train them (objectives/), so that reading them loads no
torch: the CLI builds its commands from them, run.json's reader too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import UsageError, named
from .options import check_options, only_with, option
from .schedules import default_block_sizes, validate_block_sizes, wsd_block_size

# The keys of the mask schedules (diffusion_pretraining.MASK_SCHEDULES) and of the noise
# schedules (masking.NOISE_SCHEDULES), whose values are torch functions; a test keeps them in step.
MASK_SCHEDULE_NAMES = ("iid_t", "wsd")
NOISE_SCHEDULE_NAMES = ("linear", "cosine")

BLOCK_FORMS = {
    "bdlm": "LLaDA 2.0 block diffusion: a t per block, [x_t ; x0] under the block attention rule",
    "masked_blocks": "Nano-LLaDA: whole blocks masked, round(blocks * t) of them, full attention",
}
SFT_FORMS = {
    "full": "LLaDA: the answer masked with one t per row, full attention",
    "block": "LLaDA 2.0 block diffusion: the answer in blocks, a t per block, [x_t ; x0], block rule",
}
# block SFT's block size for a base that does not decode in blocks: answers of the builtin world
# run 5-15 tokens, so 8 keeps one or two blocks an answer and the exact cache something to keep
DEFAULT_SFT_BLOCK = 8
PAD_POLICIES = {
    "capped": "EOS padding is trained as response, weighing at most `pad_tokens` answer tokens a row",
    "eos": "EOS padding is trained as response, each EOS one answer token (LLaDA)",
    "ignore": "padding is neither attended nor trained",
}


@dataclass(frozen=True)
class ObjectiveConfig:
    """What every objective's options answer: the logit shift of the model a run trains, and
    whether the training rows suit them (both hold for any option value unless a class says).
    Every subclass's option values are checked against their declared bounds as it is built."""

    def __post_init__(self) -> None:
        check_options(self)

    def shifts_logits(self, from_ar: bool) -> bool:
        return False

    def check_row_length(self, seq_len: int) -> None:
        return None

    def decoding_block(self, total_steps: int | None, seq_len: int | None) -> int | None:
        """The block size a run trained with these options decodes block-causally in (docs/
        algorithms.md section 7); None for one trained bidirectionally."""
        return None

    def check_applies(self) -> None:
        """Refuse an option that has no effect with the others (`only_with`). Checked when a new run
        is asked for (training/request.py), not in __post_init__: a run recorded with such an
        option before this check still reads back, samples and resumes."""
        return None


@dataclass(frozen=True)
class DocumentMasking(ObjectiveConfig):
    doc_attention_mask: bool = option(
        False, "Attend only within a document of a packed row.", aliases=("use_doc_attention_mask",)
    )


@dataclass(frozen=True)
class ARPretrainConfig(DocumentMasking):
    """The options of AR pretraining."""


@dataclass(frozen=True)
class DiffusionPretrainConfig(DocumentMasking):
    """The options of diffusion pretraining."""

    logit_shift: bool | None = option(
        None,
        "Let position i-1 predict token i, as the AR weights it starts from do (Dream's adaptation; "
        "docs/algorithms.md section 11). Default: on with `init_from` an AR run, off from scratch.",
        negatable=True,
    )
    mask_schedule: str = option(
        "iid_t",
        "iid_t: t ~ U(0,1) per row (LLaDA 1.0); wsd: the mask ratio rises, holds and decays over "
        "training (Nano-LLaDA).",
        choices=MASK_SCHEDULE_NAMES,
    )
    noise_schedule: str = option("linear", "alpha(t) of the forward process.", choices=NOISE_SCHEDULE_NAMES)
    time_weighted_loss: bool = option(False, "Weight by w(t) of the noise schedule instead of 1/p.")
    normalized_loss: bool = option(
        False, "sum(w*CE)/sum(w*masked) (nano-llada) instead of the ELBO's division by the token count."
    )
    iid_mask_eps: float = option(
        1e-3,
        "Smallest t: bounds the mask rate and its weight alike.",
        aliases=("time_weight_eps",),
        above=0,
        below=1,
    )
    variable_length_prob: float = option(
        0.01, "Share of batches cut to a random length.", at_least=0, at_most=1
    )
    wsd_min_mask_ratio: float = option(
        0.15, "wsd: the mask ratio at the start and the end.", above=0, at_most=1
    )
    wsd_max_mask_ratio: float = option(1.0, "wsd: the mask ratio of the stable phase.", above=0, at_most=1)
    wsd_warmup_ratio: float = option(
        0.2, "wsd: share of the steps rising to the max ratio.", at_least=0, at_most=1
    )
    wsd_stable_ratio: float = option(
        0.6, "wsd: share of the steps held at the max ratio.", at_least=0, at_most=1
    )
    use_block_curriculum: bool = option(
        False, "Train blocks whose size follows a warmup-stable-decay curriculum."
    )
    block_curriculum_form: str = option(
        "bdlm", "How the curriculum's blocks are trained.", choices=BLOCK_FORMS
    )
    wsd_phase_ratios: tuple[float, float, float] = option(
        (0.3, 0.5, 0.2), "Block curriculum: warmup, stable and decay shares of the steps."
    )
    wsd_block_sizes_up: tuple[int, ...] = option(
        (),
        "Block curriculum warmup sizes, e.g. 1,4,16,64,256 (default: from the row length).",
        aliases=("block_sizes_up",),
        at_least=1,
    )
    wsd_block_sizes_down: tuple[int, ...] = option(
        (),
        "Block curriculum decay sizes (default: from the row length).",
        aliases=("block_sizes_down",),
        at_least=1,
    )
    repeat_penalty_weight: float = option(
        0.0,
        "Unlikelihood of repeating the previous token where the text does not (0: off, LLaDA).",
        at_least=0,
    )
    repeat_penalty_min_run: int = option(2, "Only repeats that would make a run this long.", at_least=2)
    repeat_penalty_delay_steps: int = option(0, "Steps before the repeat penalty starts.", at_least=0)
    repeat_penalty_warmup_steps: int = option(0, "Steps over which it rises to its weight.", at_least=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.wsd_min_mask_ratio > self.wsd_max_mask_ratio:
            raise UsageError(f"{named('wsd_min_mask_ratio')} must not exceed {named('wsd_max_mask_ratio')}")
        if self.wsd_warmup_ratio + self.wsd_stable_ratio > 1:
            raise UsageError(f"{named('wsd_warmup_ratio')} + {named('wsd_stable_ratio')} must be at most 1")
        phases = self.wsd_phase_ratios
        if len(phases) != 3 or min(phases) < 0 or sum(phases) <= 0:
            raise UsageError(
                f"{named('wsd_phase_ratios')} needs three shares >= 0 with a positive sum, e.g. 0.3,0.5,0.2"
            )

    def check_applies(self) -> None:
        curriculum = [
            "block_curriculum_form",
            "wsd_phase_ratios",
            "wsd_block_sizes_up",
            "wsd_block_sizes_down",
        ]
        only_with(self, curriculum, self.use_block_curriculum, named("use_block_curriculum"))
        mask_ratio = ("wsd_min_mask_ratio", "wsd_max_mask_ratio", "wsd_warmup_ratio", "wsd_stable_ratio")
        only_with(self, mask_ratio, self.mask_schedule == "wsd", f"{named('mask_schedule')} wsd")
        penalty = ("repeat_penalty_min_run", "repeat_penalty_delay_steps", "repeat_penalty_warmup_steps")
        weighted = self.repeat_penalty_weight > 0
        only_with(self, penalty, weighted, f"a {named('repeat_penalty_weight')} above 0")

    def shifts_logits(self, from_ar: bool) -> bool:
        """Whether the model this run trains has the logit shift (a model property, in its config)."""
        return from_ar if self.logit_shift is None else self.logit_shift

    def curriculum_block(self, step: int, total_steps: int, seq_len: int) -> int:
        """The block size at 0-based `step` of `total_steps`; seq_len (one block) without the curriculum."""
        if not self.use_block_curriculum:
            return seq_len
        up, down = default_block_sizes(seq_len)
        return wsd_block_size(
            step,
            total_steps,
            seq_len,
            self.wsd_block_sizes_up or up,
            self.wsd_block_sizes_down or down,
            self.wsd_phase_ratios,
        )

    def decoding_block(self, total_steps: int | None, seq_len: int | None) -> int | None:
        """The block size the curriculum ends on, in `bdlm` form (shorter than a row)."""
        bdlm = self.use_block_curriculum and self.block_curriculum_form == "bdlm"
        if not bdlm or not total_steps or not seq_len:
            return None
        last = self.curriculum_block(total_steps - 1, total_steps, seq_len)
        return last if last < seq_len else None

    def check_row_length(self, seq_len: int) -> None:
        """Block sizes must divide the training rows."""
        if self.use_block_curriculum:
            for name in ("wsd_block_sizes_up", "wsd_block_sizes_down"):
                if getattr(self, name):
                    validate_block_sizes(getattr(self, name), seq_len, name)


@dataclass(frozen=True)
class ARSFTConfig(ObjectiveConfig):
    """AR SFT has no options of its own."""


@dataclass(frozen=True)
class DiffusionSFTConfig(ObjectiveConfig):
    """The options of LLaDA SFT (docs/algorithms.md section 6)."""

    pad_policy: str = option(
        "capped",
        "capped: the EOS padding after an answer is trained and weighs as much as `pad_tokens` answer "
        "tokens; eos: each EOS weighs one answer token (LLaDA); ignore: padding not attended nor trained.",
        choices=PAD_POLICIES,
    )
    pad_tokens: int = option(
        2, "capped: how many answer tokens the padding of a row weighs at most.", at_least=1
    )
    complementary_masking: bool = option(False, "Each row twice with complementary masks (LLaDA 2.0).")
    mask_ratio_band: tuple[float, float] | None = option(None, "Restrict t to [a,b], e.g. 0.2,0.8.")
    sft_form: str | None = option(
        None,
        "full: the answer masked as one; block: block diffusion, so the chat model decodes "
        "block-causally with an exact cache. Default: block for a base that decodes in blocks, else full.",
        choices=SFT_FORMS,
    )
    block_size: int | None = option(
        None,
        f"block: the answer's block size (default: the base's decoding block, else {DEFAULT_SFT_BLOCK}).",
        at_least=1,
    )
    cap_weight: float = option(
        0.0,
        "Weight of the CAP confidence loss: the entropy of the masked tokens the model already "
        "predicts right, so threshold decoding commits more per step (0: off).",
        at_least=0,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        band = self.mask_ratio_band
        if band is not None and not (len(band) == 2 and 0.0 <= band[0] <= band[1] <= 1.0):
            raise UsageError(f"{named('mask_ratio_band')} needs two numbers a,b with 0 <= a <= b <= 1")

    def check_applies(self) -> None:
        only_with(self, ("pad_tokens",), self.pad_policy == "capped", f"{named('pad_policy')} capped")
        only_with(self, ("block_size",), self.sft_form != "full", f"{named('sft_form')} block")

    def decoding_block(self, total_steps: int | None, seq_len: int | None) -> int | None:
        return self.block_size if self.sft_form == "block" else None

    def with_form_of(self, base_block: int | None) -> DiffusionSFTConfig:
        """The form and block size filled in from the base run's decoding block (None: it decodes
        bidirectionally): block SFT for a block-diffusion base, unless told otherwise."""
        form = self.sft_form or ("block" if base_block is not None else "full")
        if form == "full" and self.block_size is not None:
            raise UsageError(
                f"{named('block_size')} applies only with {named('sft_form')} block (the base decodes "
                "bidirectionally, so its SFT is full by default): add that, or drop it"
            )
        if form == "full":
            return replace(self, sft_form="full")
        return replace(self, sft_form="block", block_size=self.block_size or base_block or DEFAULT_SFT_BLOCK)


@dataclass(frozen=True)
class ARDPOConfig(ObjectiveConfig):
    """The options of DPO (docs/algorithms.md section 14)."""

    beta: float = option(
        0.1, "DPO: the scale of the implicit reward, beta * log(policy / reference).", above=0, at_most=1e4
    )
    dpop_lambda: float = option(
        0.0,
        "DPO-Positive (Smaug): penalise a chosen answer falling below the reference's likelihood, "
        "which plain DPO allows when the two answers differ in a few tokens (0: plain DPO).",
        at_least=0,
        at_most=1e6,
    )


@dataclass(frozen=True)
class DiffusionDPOConfig(ARDPOConfig):
    """DPO of a diffusion model on ELBO estimates, with LLaDA 1.5's variance reduction (VRPO)."""

    mc_num: int = option(8, "Monte Carlo samples of each answer's ELBO.", at_least=1, at_most=1024)
    vrpo: bool = option(
        True,
        "VRPO: mask counts spread over the samples, and the same masks for policy and reference "
        "(--no-vrpo: independent draws for each, the naive estimator).",
        negatable=True,
    )


@dataclass(frozen=True)
class ARGRPOConfig(ObjectiveConfig):
    """The options of GRPO with a verifiable reward (docs/algorithms.md section 15)."""

    group_size: int = option(8, "GRPO: answers sampled per prompt (the group).", at_least=2, at_most=1024)
    temperature: float = option(
        1.0,
        "GRPO: the sampling temperature of the answers (above 0: a group must differ).",
        above=0,
        at_most=10,
    )
    gen_length: int = option(
        32, "GRPO: the answers' length in tokens (AR: at most; diffusion: the slots).", at_least=1
    )
    kl_beta: float = option(
        0.04, "GRPO: weight of the KL penalty to the frozen base (0: none).", at_least=0, at_most=1e4
    )
    clip_eps: float = option(
        0.2, "GRPO: the probability ratio is clipped to [1 - eps, 1 + eps].", above=0, below=1
    )
    inner_steps: int = option(
        1,
        "GRPO: optimizer steps on each batch of sampled answers (d1's mu; above 1 the ratio to the "
        "sampling policy, and its clipping, come into play).",
        at_least=1,
        at_most=64,
    )

    def check_row_length(self, seq_len: int) -> None:
        if self.gen_length >= seq_len:
            raise UsageError(
                f"{named('gen_length')} {self.gen_length} leaves no room for a prompt in rows of "
                f"{seq_len} tokens: give less than {seq_len}"
            )


GRPO_ESTIMATORS = {
    "coupled": "DiffuCoder's coupled estimate: the answer masked at a random rate and by the complement; "
    "each token read where it is masked, the rest of the answer visible; two passes",
    "d1": "d1's diffu-GRPO: the whole answer masked, prompt tokens masked at random; one pass",
}


@dataclass(frozen=True)
class DiffusionGRPOConfig(ARGRPOConfig):
    """GRPO of a diffusion model: per-token log-probabilities estimated by masked forward passes."""

    estimator: str = option(
        "coupled",
        "How an answer token's log-probability is estimated: coupled (a random share of the answer "
        "masked, then the rest; two passes) or d1 (the whole answer masked, one pass).",
        choices=GRPO_ESTIMATORS,
    )
    prompt_mask_prob: float = option(
        0.15,
        "d1: each prompt token is masked with this probability when the answer's log-likelihood is "
        "estimated, a fresh draw per inner step (d1's regulariser).",
        at_least=0,
        below=1,
    )

    def check_applies(self) -> None:
        only_with(self, ("prompt_mask_prob",), self.estimator == "d1", f"{named('estimator')} d1")


# The options of each (kind, stage) (objectives/build.py: the objective each trains).
OBJECTIVE_CONFIGS: dict[tuple[str, str], type[ObjectiveConfig]] = {
    ("ar", "pretrain"): ARPretrainConfig,
    ("diffusion", "pretrain"): DiffusionPretrainConfig,
    ("ar", "sft"): ARSFTConfig,
    ("diffusion", "sft"): DiffusionSFTConfig,
    ("ar", "dpo"): ARDPOConfig,
    ("diffusion", "dpo"): DiffusionDPOConfig,
    ("ar", "grpo"): ARGRPOConfig,
    ("diffusion", "grpo"): DiffusionGRPOConfig,
}
