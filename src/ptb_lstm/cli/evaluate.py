"""``ptb-lstm evaluate``: the perplexity of a checkpoint on one split."""

from __future__ import annotations

import json
import time

from ptb_lstm.cli import options

HELP = "perplexity of a checkpoint on one split"
DESCRIPTION = (
    "Perplexity exp(total NLL / target tokens) of one split, with the state "
    "carried through the whole split from zeros, as during training."
)
EPILOG = (
    "examples:\n"
    "  ptb-lstm evaluate --checkpoint runs/x/model.npz --split test\n"
    "  ptb-lstm evaluate --checkpoint runs/x/model.npz --batch-size 1 --num-steps 1 "
    "--json"
)


def add_arguments(p):
    options.add_checkpoint(p)
    options.add_engine(p, dtype_default=None)
    options.add_data_dir(p)
    p.add_argument(
        "--split",
        default="test",
        choices=("train", "valid", "test"),
        help="which split (default: test)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        metavar="B",
        help="streams evaluated side by side (default: the checkpoint's config)",
    )
    p.add_argument(
        "--num-steps",
        type=int,
        metavar="T",
        help="time steps per evaluation step (default: the checkpoint's config)",
    )
    options.add_json(p, "perplexity, tokens, split, ...")


def run(args) -> int:
    from ptb_lstm.data import load_corpus, num_batches
    from ptb_lstm.evaluate import evaluate
    from ptb_lstm.progress import ConsoleReporter

    options.positive(args.batch_size, "--batch-size")
    options.positive(args.num_steps, "--num-steps")
    ckpt, engine = options.load_model(args)
    corpus = load_corpus(options.locate(args.data_dir), vocab=ckpt.vocab)
    batch_size = args.batch_size or ckpt.config.batch_size
    num_steps = args.num_steps or ckpt.config.num_steps
    shape = (batch_size, num_steps)
    started = time.perf_counter()
    shown = ConsoleReporter()  # a bar on a terminal, silent in a log
    ids, split = corpus.split(args.split), args.split
    shown.record({"event": "eval_start", "split": split, "steps": num_batches(len(ids), *shape)})

    def on_step(done: int, steps: int) -> None:
        shown.record({"event": "eval_progress", "split": split, "done": done, "steps": steps})

    result = evaluate(engine, ids, *shape, on_step=on_step)
    shown.record({"event": "eval_end", "split": split, "perplexity": result.perplexity})
    record = {
        "split": args.split,
        **result.to_dict(),
        "checkpoint": args.checkpoint,
        "engine": engine.name,
        "dtype": engine.dtype,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if args.json:
        print(json.dumps(record))
    else:
        print(
            f"{args.split} perplexity {result.perplexity:.3f} over {result.tokens:,} tokens "
            f"(batch {batch_size} x {num_steps} steps, {engine.name}, {engine.dtype}, "
            f"{record['seconds']:.1f} s)"
        )
    return 0
