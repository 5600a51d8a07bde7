"""Byte-level BPE tokenizer: loading/training tokenizer.json, special tokens and the ChatML template.

A trained tokenizer never merges CJK characters (each is one piece before BPE).
Wraps a Hugging Face `tokenizers.Tokenizer`. The conventions follow MiniMind so its tokenizer.json
loads unchanged: <|endoftext|>, <|im_start|>, <|im_end|> are specials 0, 1, 2. Diffusion models
add one more special, <|mask|>, appended at the end of the vocabulary.

`tokenizers` is imported where a tokenizer is made, not at the top: the CLI builds its commands
from TokenizerOptions (run_options.py) without loading it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import write_text_atomic
from ..errors import UsageError
from ..vocabulary import EOS, IM_END, IM_START, MASK, MIN_VOCAB_SIZE, REQUIRED_SPECIALS

if TYPE_CHECKING:
    import tokenizers


# Han (with extensions A and the compatibility block), kana and Hangul syllables: scripts written
# without spaces between words, whose characters BPE may not merge (Tokenizer.train).
CJK_CHARACTER = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]"


class Tokenizer:
    """A validated tokenizer: every required special token is known to be present."""

    def __init__(self, backend: tokenizers.Tokenizer) -> None:
        special_ids: dict[str, int] = {}
        for token in REQUIRED_SPECIALS:
            token_id = backend.token_to_id(token)
            if token_id is None:
                raise UsageError(
                    f"tokenizer has no special token {token}; use a tokenizer.json that defines "
                    f"{', '.join(REQUIRED_SPECIALS)} (MiniMind's does) or train one with `llada`"
                )
            special_ids[token] = token_id
        self.backend = backend
        self.eos_id = special_ids[EOS]
        self.im_start_id = special_ids[IM_START]
        self.im_end_id = special_ids[IM_END]
        self.mask_id: int | None = backend.token_to_id(MASK)

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def load(cls, path: Path) -> Tokenizer:
        import tokenizers

        path = Path(path)
        if not path.is_file():
            raise UsageError(f"tokenizer file not found: {path}; pass the path of a tokenizer.json")
        try:
            backend = tokenizers.Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust side raises plain Exception for bad JSON or a bad model
            reason = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"cannot read tokenizer {path}: {reason}; is it a tokenizer.json?") from exc
        return cls(backend)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> Tokenizer:
        """Byte-level BPE with the specials first, so they get ids 0, 1, 2 as in MiniMind."""
        if vocab_size < MIN_VOCAB_SIZE:
            raise UsageError(f"vocab size {vocab_size} is too small; use at least {MIN_VOCAB_SIZE}")
        import tokenizers
        from tokenizers import decoders, models, pre_tokenizers, trainers

        backend = tokenizers.Tokenizer(models.BPE())
        # Each CJK character its own piece (as BERT's Chinese tokenizer): ByteLevel alone splits on
        # spaces and punctuation only, so BPE would merge a whole Chinese clause, a fact, into one token.
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(tokenizers.Regex(CJK_CHARACTER), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False),
            ]
        )
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(REQUIRED_SPECIALS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer)
        return cls(backend)

    def save(self, path: Path) -> None:
        """Write tokenizer.json atomically: a reader never sees a half-written file."""
        write_text_atomic(Path(path), self.backend.to_str(pretty=True))

    def with_mask_token(self) -> Tokenizer:
        """A copy with <|mask|> appended (id == current vocab size); `self` if it already has one."""
        if self.mask_id is not None:
            return self
        import tokenizers
        from tokenizers import AddedToken

        backend = tokenizers.Tokenizer.from_str(self.backend.to_str())
        backend.add_special_tokens([AddedToken(MASK, special=True, normalized=False)])
        return Tokenizer(backend)

    # ----------------------------------------------------------------------------- properties

    def same_vocabulary(self, other: Tokenizer) -> bool:
        """The same tokens with the same ids, an added <|mask|> aside."""
        mine, theirs = (t.backend.get_vocab(with_added_tokens=True) for t in (self, other))
        mine.pop(MASK, None)
        theirs.pop(MASK, None)
        return mine == theirs

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def diffusion_mask_id(self) -> int:
        """The id of <|mask|>, which a diffusion model's tokenizer has (with_mask_token adds it)."""
        if self.mask_id is None:
            raise UsageError(f"tokenizer has no {MASK} token, which a diffusion model needs")
        return self.mask_id

    # ----------------------------------------------------------------------------- encode / decode

    def encode(self, text: str) -> list[int]:
        """Ids of `text`; nothing is added, but special-token strings inside it become their ids."""
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in self.backend.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def chat_text(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        """ChatML, the MiniMind convention; optionally opened for the assistant's next turn."""
        text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
        if add_generation_prompt:
            text += f"{IM_START}assistant\n"
        return text
