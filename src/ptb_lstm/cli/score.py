"""``ptb-lstm score``: perplexity and log-likelihood of any text under a model."""

from __future__ import annotations

import json
from pathlib import Path

from ptb_lstm import bounds
from ptb_lstm.cli import options
from ptb_lstm.errors import UserError
from ptb_lstm.text import NORMALIZATION_HELP

HELP = "perplexity and log-likelihood of any text under a model"
DESCRIPTION = (
    "Perplexity and total log-likelihood (natural log) of arbitrary text, read "
    "as one stream after a sentence end. " + NORMALIZATION_HELP + " Words "
    "outside the vocabulary become <unk> and are counted."
)
EPILOG = (
    'examples:\n  ptb-lstm score --checkpoint runs/x/model.npz --text "the company '
    'said it expects profit to rise."\n'
    "  ptb-lstm score --checkpoint runs/x/model.npz --text-file news.txt "
    "--per-sentence --json"
)


def add_arguments(p):
    options.add_checkpoint(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text itself")
    source.add_argument("--text-file", metavar="F", help="a UTF-8 text file")
    p.add_argument(
        "--per-sentence", action="store_true", help="also score each sentence on its own line"
    )
    options.add_json(p, "perplexity, tokens, unknown, log_likelihood")
    options.add_engine(p, dtype_default=None)
    return p


def read_text(args) -> str:
    """The text of ``--text`` or of ``--text-file``."""
    if args.text_file is None:
        return args.text
    source = f"--text-file {bounds.shown_path(args.text_file)}"
    try:
        raw = Path(args.text_file).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{source} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{source} is a folder, not a text file") from None
    except OSError as error:
        raise bounds.os_error(error, source) from None
    return bounds.decode_text(raw, source)


def run(args) -> int:
    from ptb_lstm.score import score_text

    text = read_text(args)
    ckpt, engine = options.load_model(args)
    result = score_text(engine, ckpt.vocab, text, num_steps=ckpt.config.num_steps)
    if result.tokens == 0:
        raise UserError("the text holds no words to score")
    if args.json:
        record = result.to_dict()
        if not args.per_sentence:
            record.pop("sentences")
        print(json.dumps(record))
        return 0
    if args.per_sentence:
        print(f"{'perplexity':>10}  {'log-lik.':>9}  sentence")
        for sentence in result.sentences:
            print(f"{sentence.perplexity:10.2f}  {sentence.log_likelihood:9.2f}  {sentence.text}")
        print()
    print(
        f"perplexity {result.perplexity:.2f}, log-likelihood {result.log_likelihood:.2f} "
        f"over {result.tokens} tokens ({result.unknown} unknown, scored as <unk>)"
    )
    return 0
