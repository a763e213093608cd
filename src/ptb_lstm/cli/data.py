"""``ptb-lstm data``: where PTB is, its statistics and steps per epoch."""

from __future__ import annotations

import json

from ptb_lstm.cli import options

HELP = "locate or download PTB; print its statistics"
DESCRIPTION = (
    "Find the Penn Treebank (downloading simple-examples.tgz into the user cache "
    "when it is nowhere else, or its three files from a mirror when that "
    "fails, verifying their SHA-256), then print where it is, tokens per "
    "split, the vocabulary size and the steps per epoch. PTB_DATA_URL replaces "
    "the list of sources: URLs separated by spaces, each a .tgz or a folder "
    "ending in / that holds the three files. A transfer that stalls is given "
    "up: PTB_DOWNLOAD_TIMEOUT (seconds, default 60) bounds each read, each such "
    "span must bring 1 KiB, and a source gets at most 30 spans. Other files in "
    "the cache folder are left alone."
)
EPILOG = "example:\n  ptb-lstm data --data-dir ~/ptb --config medium --json"


def add_arguments(p):
    options.add_data_dir(p)
    options.add_config(
        p,
        default="small",
        help="config whose batch size and length give the steps per epoch (default: small)",
    )
    options.add_json(p)


def run(args) -> int:
    from ptb_lstm.config import load_config
    from ptb_lstm.data import SPLITS, is_official_ptb, load_corpus, num_batches

    config = load_config(args.config)
    data_dir = options.locate(args.data_dir)
    corpus = load_corpus(data_dir)
    tokens = {s: int(len(corpus.split(s))) for s in SPLITS}
    steps_per_epoch = {
        s: num_batches(tokens[s], config.batch_size, config.num_steps) for s in SPLITS
    }
    official = is_official_ptb(data_dir)
    stats = {
        "data_dir": str(data_dir),
        "official_ptb": official,
        "tokens": tokens,
        "vocab_size": corpus.vocab_size,
        "batch_size": config.batch_size,
        "num_steps": config.num_steps,
        "steps_per_epoch": steps_per_epoch,
    }
    if args.json:
        print(json.dumps(stats))
        return 0
    checked = (
        "SHA-256 matches simple-examples.tgz"
        if official
        else "not the official PTB files (checksums differ)"
    )
    print(f"data:        {data_dir} ({checked})")
    print(f"vocabulary:  {corpus.vocab_size:,} words")
    print(
        f"{'split':<6} {'tokens':>10} {'steps/epoch':>12}   "
        f"(batch {config.batch_size} x {config.num_steps} steps)"
    )
    for s in SPLITS:
        print(f"{s:<6} {tokens[s]:>10,} {steps_per_epoch[s]:>12,}")
    return 0
