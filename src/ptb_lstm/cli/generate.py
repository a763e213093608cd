"""``ptb-lstm generate``: sample text from a trained model."""

from __future__ import annotations

import os
import sys

from ptb_lstm.cli import options
from ptb_lstm.errors import UserError

HELP = "sample text from a trained model"
DESCRIPTION = (
    "Sample N words after a prompt, word by word, carrying the LSTM state. "
    "The prompt is read as the start of a sentence and normalised the PTB way; "
    "words outside the vocabulary become <unk> (with a warning); a model "
    "without <unk> refuses them, naming them. <eos> is "
    "printed as a line break. The same --seed gives the same text."
)
EPILOG = (
    "examples:\n  ptb-lstm generate --checkpoint runs/x/model.npz --prompt "
    '"the stock market" --words 40\n'
    "  ptb-lstm generate --checkpoint runs/x/model.npz --temperature 0.7 --top-k 50 "
    "--seed 3"
)


def add_arguments(p):
    options.add_checkpoint(p)
    p.add_argument("--prompt", default="", help="text to start from (default: none)")
    p.add_argument(
        "--words", type=int, default=50, metavar="N", help="words to sample (default: 50)"
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        metavar="T",
        help="divide the logits by T: below 1 is more conservative (default: 1)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=0,
        metavar="K",
        help="sample only among the K likeliest words (default: 0, all)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (default: 0)")
    options.add_engine(p, dtype_default=None)


def run(args) -> int:
    import itertools

    from ptb_lstm.generate import generate, read_prompt, text_pieces

    options.positive(args.words, "--words")
    options.positive(args.top_k, "--top-k", allow_zero=True)
    if not args.temperature > 0:
        raise UserError(f"--temperature must be > 0, got {args.temperature}")
    ckpt, engine = options.load_model(args)
    prompt = read_prompt(args.prompt, ckpt.vocab)
    if prompt.warning:
        print(f"ptb-lstm: warning: {prompt.warning}", file=sys.stderr)
    words = generate(
        engine, ckpt.vocab, prompt.ids, args.words, args.temperature, args.top_k, args.seed
    )
    try:  # each word as it is drawn
        for piece in text_pieces(itertools.chain(prompt.tokens, words)):
            sys.stdout.write(piece)
            sys.stdout.flush()
    except BrokenPipeError:  # the reader (head, a pager) has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
