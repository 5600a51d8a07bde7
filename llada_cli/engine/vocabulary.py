"""The special tokens every llada tokenizer has, and the smallest vocabulary that can hold them.

MiniMind's conventions, so its tokenizer.json loads unchanged: <|endoftext|>, <|im_start|> and
<|im_end|> are specials 0, 1 and 2; a diffusion model appends <|mask|> (model/tokenizer.py).
"""

EOS = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
MASK = "<|mask|>"
REQUIRED_SPECIALS = (EOS, IM_START, IM_END)

# 256 byte symbols + the required specials: a smaller vocabulary could not encode every byte.
MIN_VOCAB_SIZE = 256 + len(REQUIRED_SPECIALS)
