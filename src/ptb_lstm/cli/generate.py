"""``ptb-lstm generate``: sample text from a trained model."""

from __future__ import annotations

import sys

from ptb_lstm.cli import options
from ptb_lstm.errors import UserError

HELP = "sample text from a trained model"
DESCRIPTION = ("Sample N words after a prompt, word by word, carrying the LSTM state. "
               "The prompt is read as the start of a sentence and normalised the PTB way; "
               "words outside the vocabulary become <unk> (with a warning). <eos> is "
               "printed as a line break. The same --seed gives the same text.")
EPILOG = ("examples:\n  ptb-lstm generate --checkpoint runs/x/model.npz --prompt "
          "\"the stock market\" --words 40\n"
          "  ptb-lstm generate --checkpoint runs/x/model.npz --temperature 0.7 --top-k 50 "
          "--seed 3")


def add_arguments(p):
    options.add_checkpoint(p)
    p.add_argument("--prompt", default="", help="text to start from (default: none)")
    p.add_argument("--words", type=int, default=50, metavar="N",
                   help="words to sample (default: 50)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T",
                   help="divide the logits by T: below 1 is more conservative (default: 1)")
    p.add_argument("--top-k", type=int, default=0, metavar="K",
                   help="sample only among the K likeliest words (default: 0, all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (default: 0)")
    options.add_engine(p, dtype_default=None)


def run(args) -> int:
    from ptb_lstm.generate import generate
    from ptb_lstm.text import normalize, to_ids

    options.positive(args.words, "--words")
    options.positive(args.top_k, "--top-k", allow_zero=True)
    if not args.temperature > 0:
        raise UserError(f"--temperature must be > 0, got {args.temperature}")
    ckpt, engine = options.load_model(args)
    vocab_set = set(ckpt.vocab)
    prompt = [token for sentence in normalize(args.prompt, vocab_set) for token in sentence]
    unknown = sorted({t for t in prompt if t not in vocab_set})
    if unknown:
        print(f"ptb-lstm: warning: not in the vocabulary, read as <unk>: {', '.join(unknown)}",
              file=sys.stderr)
    ids, used, _ = to_ids([prompt], {w: i for i, w in enumerate(ckpt.vocab)})
    words = generate(engine, ckpt.vocab, ids[:-1], args.words, args.temperature, args.top_k,
                     args.seed)
    text = " ".join([*used[:-1], *words])
    print("\n".join(line.strip() for line in text.split("<eos>")))
    return 0
