"""``ptb-lstm look``: look inside a trained model while it reads a text (docs/inside.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from ptb_lstm import bounds
from ptb_lstm.cli import options
from ptb_lstm.errors import UserError
from ptb_lstm.text import NORMALIZATION_HELP

HELP = "inside a model: surprisal, cells, gates and neighbours, as figures and JSON"
DESCRIPTION = (
    "Look inside a trained model as it reads a text, read as one stream after a sentence end "
    "with the reference engine (numpy-reference), in chunks that carry the state on. "
    "Writes into --out: surprisal.json and surprisal.html (each word's surprisal, "
    "-log p(word | the words before it)), surprisal.png (the first --words words), "
    "activations-layer-L.png (c and h of --layer over those words); then, over the first "
    "--limit words of --split: saturation.png and saturation.json (per unit, how often "
    "each gate is below 0.1 and above 0.9, as in Karpathy, Johnson and Fei-Fei 2015) and "
    "cells.json (the cells most correlated with the position in the sentence, N, and "
    "quotations and parentheses where the vocabulary has their marks; printed as a table). "
    "--neighbours WORD prints the nearest words in the embedding and in the softmax "
    "weights (cosine) and how many both share. " + NORMALIZATION_HELP
)
EPILOG = (
    "examples:\n"
    "  ptb-lstm look --checkpoint runs/x/model.npz --text 'the company said profits rose "
    "sharply .' --out look/\n"
    "  ptb-lstm look --checkpoint runs/x/model.npz --text-file news.txt --layer 1 "
    "--split none --out look/\n"
    "  cat news.txt | ptb-lstm look --checkpoint runs/x/model.npz --text-file - --out look/\n"
    "  ptb-lstm look --checkpoint runs/x/model.npz --neighbours stock --neighbours "
    "president"
)


def add_arguments(p):
    options.add_checkpoint(p)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--text", help="the text itself")
    source.add_argument("--text-file", metavar="F", help="a UTF-8 text file, or - for stdin")
    p.add_argument("--out", metavar="DIR", help="folder for the files (created if needed)")
    p.add_argument(
        "--layer",
        type=int,
        metavar="L",
        help="layer of the heatmap: 1 reads the embedding (default: the top layer)",
    )
    p.add_argument(
        "--words", type=int, default=80, metavar="N", help="words in the figures (default: 80)"
    )
    p.add_argument(
        "--units",
        type=int,
        default=40,
        metavar="N",
        help="units in the heatmap, those whose c varies most over the words (default: 40)",
    )
    p.add_argument(
        "--split",
        default="valid",
        choices=("train", "valid", "test", "none"),
        help="split for gate saturation and cell correlations; none skips them (default: valid)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=20000,
        metavar="N",
        help="words of --split read, from its start (default: 20000)",
    )
    options.add_data_dir(p)
    p.add_argument(
        "--neighbours",
        action="append",
        default=[],
        metavar="WORD",
        help="print WORD's nearest words in the embedding and the softmax, and write "
        "them to --out/neighbours.json when --out is given (repeatable)",
    )
    p.add_argument(
        "--top", type=int, default=10, metavar="K", help="neighbours listed (default: 10)"
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help="floating-point type of the maths (default: the checkpoint's)",
    )
    return p


def read_source(args) -> tuple[str, str]:
    """The text of ``--text``, ``--text-file`` or stdin (``--text-file -``), and its name."""
    if args.text is not None:
        return args.text, "--text"
    if args.text_file == "-":
        return bounds.decode_text(sys.stdin.buffer.read(), "--text-file - (stdin)"), "stdin"
    source = f"--text-file {bounds.shown_path(args.text_file)}"
    return bounds.read_text(args.text_file, source), source


def check_flags(args) -> None:
    for flag in ("words", "units", "limit", "top"):
        options.positive(getattr(args, flag), f"--{flag}")
    has_text = args.text is not None or args.text_file is not None
    if not has_text and not args.neighbours:
        raise UserError("give a text (--text or --text-file) or a word (--neighbours WORD)")
    if has_text and args.out is None:
        raise UserError("--out: give a folder for the files written about the text")
    if args.out is not None:
        options.writable_folder(args.out, "--out")


def run(args) -> int:
    from ptb_lstm import checkpoint, look

    check_flags(args)
    ckpt = checkpoint.load(args.checkpoint)
    layer = ckpt.config.num_layers if args.layer is None else args.layer
    look.check_layer(layer, ckpt.config.num_layers)
    found = [look.neighbours(ckpt, word, args.top) for word in args.neighbours]
    if args.text is not None or args.text_file is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        engine = look.reference_engine(ckpt, args.dtype)
        text, source = read_source(args)
        reading = look.read_text(engine, ckpt, text, layer, keep=args.words, source=source)
        for path in write_text_files(reading, out, args):
            print(f"wrote {path}")
        if args.split != "none":
            corpus = read_split(engine, ckpt, args)
            for path in write_corpus_files(corpus, out):
                print(f"wrote {path}")
            print_cells(look.top_cells(corpus, 3), corpus)
        print(
            f"perplexity {reading.perplexity:.2f} over {len(reading.words)} tokens "
            f"(log-likelihood {reading.log_likelihood:.2f})"
        )
    for record in found:
        print_neighbours(record)
    if found and args.out is not None:
        from ptb_lstm.look_figures import write_json

        print(f"wrote {write_json(Path(args.out) / 'neighbours.json', {'words': found})}")
    return 0


def read_split(engine, ckpt, args):
    from ptb_lstm.data import load_corpus
    from ptb_lstm.look import read_corpus

    corpus = load_corpus(options.locate(args.data_dir), vocab=ckpt.vocab)
    ids = corpus.split(args.split)
    return read_corpus(engine, ckpt.vocab, ids, args.split, args.limit)


def write_text_files(reading, out: Path, args) -> list[Path]:
    from ptb_lstm import atomic
    from ptb_lstm import look_figures as fig

    record = {"checkpoint": bounds.shown_path(args.checkpoint), **reading.to_dict()}
    title = f"{Path(args.checkpoint).name}, layer {reading.layer}"
    return [
        fig.write_json(out / "surprisal.json", record),
        atomic.write_text_atomic(out / "surprisal.html", fig.surprisal_html(reading, title)),
        fig.plot_surprisal(reading, out / "surprisal.png", args.words),
        fig.plot_activations(reading, out / f"activations-layer-{reading.layer}.png", args.units),
    ]


def write_corpus_files(corpus, out: Path) -> list[Path]:
    from ptb_lstm import look
    from ptb_lstm import look_figures as fig

    record = look.corpus_dict(corpus)
    cells = {key: record.pop(key) for key in ("marks", "top_cells")}
    cells = {"split": corpus.split, "tokens": corpus.tokens, "feature": "c", **cells}
    return [
        fig.write_json(out / "saturation.json", record),
        fig.plot_saturation(corpus, out / "saturation.png"),
        fig.write_json(out / "cells.json", cells),
    ]


def print_cells(top: dict, corpus) -> None:
    print(
        f"cells (c) most correlated with features of the {corpus.split} split "
        f"({corpus.tokens:,} words):"
    )
    print(f"  {'feature':<18} {'layer':>5} {'unit':>5} {'r':>7}")
    for name, found in top.items():
        if not found["cells"]:
            print(f"  {name:<18} none: {found['why_none']}")
        for cell in found["cells"]:
            print(f"  {name:<18} {cell['layer']:>5} {cell['unit']:>5} {cell['r']:>7.3f}")


def print_neighbours(record: dict) -> None:
    print(f"nearest to {record['word']!r} (cosine):")
    print(f"  {'embedding':<28} softmax weights")
    for (a, ca), (b, cb) in zip(record["embedding"], record["softmax"], strict=True):
        print(f"  {a:<20} {ca:6.3f}  {b:<20} {cb:6.3f}")
    shared = ", ".join(record["shared"]) or "none"
    print(f"  in both lists: {record['overlap']} ({shared})")
