"""The ``ptb-lstm`` command: arguments, files and error messages; the work lives elsewhere."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from ptb_lstm import __version__
from ptb_lstm.errors import UserError

EPILOG_MAIN = """\
examples:
  ptb-lstm data                          # find (or download) PTB and show its statistics
  ptb-lstm train --config small          # the paper's small model with the NumPy engine
  ptb-lstm train --config tiny --max-steps 50 --out runs/try
  ptb-lstm evaluate --checkpoint runs/try/model.npz --split test
  ptb-lstm generate --checkpoint runs/try/model.npz --prompt "the company" --words 30
  ptb-lstm score --checkpoint runs/try/model.npz --text "prices rose sharply ."
  ptb-lstm inspect runs/try/model.npz
  ptb-lstm gradcheck                     # back-propagation against finite differences
  ptb-lstm agree                         # every other engine against the NumPy engine
  ptb-lstm bench --engine numpy          # ms per step
  ptb-lstm plot runs/a runs/b --out curves.png   # learning curves of runs

PTB is looked for in --data-dir, then $PTB_DATA_DIR, then ~/.cache/ptb-lstm/ptb, and
downloaded there if it is in none of them.
"""


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    from ptb_lstm.config import PRESETS
    from ptb_lstm.engines import ENGINES

    parser = argparse.ArgumentParser(
        prog="ptb-lstm", formatter_class=_formatter, epilog=EPILOG_MAIN,
        description="Train and evaluate the LSTM language model of Zaremba et al. (2015) on the "
                    f"Penn Treebank with interchangeable engines: {', '.join(ENGINES)}.")
    parser.add_argument("--version", action="version", version=f"ptb-lstm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    data_help = ("folder holding ptb.train.txt, ptb.valid.txt and ptb.test.txt "
                 "(default: $PTB_DATA_DIR, then ~/.cache/ptb-lstm/ptb, downloading if absent)")
    presets = "|".join(PRESETS)

    # data ---------------------------------------------------------------------------------
    p = commands.add_parser(
        "data", formatter_class=_formatter, help="locate or download PTB; print its statistics",
        description="Find the Penn Treebank (downloading simple-examples.tgz into the user cache "
                    "when it is nowhere else, verifying its SHA-256), then print where it is, "
                    "tokens per split, the vocabulary size and the steps per epoch.",
        epilog="example:\n  ptb-lstm data --data-dir ~/ptb --config medium --json")
    p.add_argument("--data-dir", metavar="DIR", help=data_help)
    p.add_argument("--config", default="small", metavar=f"{presets}|FILE.toml",
                   help="config whose batch size and length give the steps per epoch "
                        "(default: small)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=cmd_data)

    # train --------------------------------------------------------------------------------
    p = commands.add_parser(
        "train", formatter_class=_formatter, help="train a model, printing perplexities",
        description="Train with the paper's schedule: SGD at learning_rate for "
                    "epochs_at_full_lr epochs, then multiplied by lr_decay every epoch; valid "
                    "perplexity after each epoch, test perplexity at the end. Writes "
                    "model.npz (after every epoch and at the end), config.json and "
                    "metrics.jsonl into --out.",
        epilog="examples:\n"
               "  ptb-lstm train --config small\n"
               "  ptb-lstm train --config small --engine tf-graph --epochs 1\n"
               "  ptb-lstm train --resume runs/20261129-101500-small-numpy\n"
               "  ptb-lstm train --config tiny --set hidden_size=32 --max-steps 100 --out runs/t\n"
               "  ptb-lstm train --init-from runs/t/model.npz --set learning_rate=0.5")
    p.add_argument("--config", metavar=f"{presets}|FILE.toml",
                   help="a preset or a TOML file with every field, or 'preset = \"small\"' and "
                        "the fields to change (default: small, or the --init-from checkpoint's)")
    _engine_args(p, ENGINES, dtype_default=None, engine_default=None)
    p.add_argument("--data-dir", metavar="DIR", help=data_help)
    p.add_argument("--out", metavar="DIR",
                   help="new or empty folder for the run (default: runs/DATE-TIME-CONFIG-ENGINE)")
    p.add_argument("--epochs", type=int, metavar="N", help="override the config's epochs")
    p.add_argument("--max-steps", type=int, metavar="N",
                   help="stop after N training steps in all (0 writes the initial checkpoint)")
    p.add_argument("--init-from", metavar="CKPT",
                   help="start from this checkpoint's weights and vocabulary")
    p.add_argument("--seed", type=int, metavar="S",
                   help="seed of the initial weights and dropout (default: the config's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set hidden_size=100 (repeatable)")
    p.add_argument("--log-every", type=int, metavar="N",
                   help="write a metrics.jsonl record every N steps (default: 100, or the "
                        "resumed run's)")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="also rewrite model.npz every N steps, with the carried state, so "
                        "--resume loses little (default: 500, or the resumed run's; 0: only "
                        "after each epoch)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run from RUN_DIR/model.npz with its own config, "
                        "engine and dtype; in float64 the NumPy engine ends with exactly the "
                        "parameters of an uninterrupted run")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write TensorBoard scalars (loss, perplexity, learning rate, "
                        "gradient norm, words/s) into DIR; needs TensorFlow")
    p.set_defaults(func=cmd_train)

    # evaluate -----------------------------------------------------------------------------
    p = commands.add_parser(
        "evaluate", formatter_class=_formatter, help="perplexity of a checkpoint on one split",
        description="Perplexity exp(total NLL / target tokens) of one split, with the state "
                    "carried through the whole split from zeros, as during training.",
        epilog="examples:\n"
               "  ptb-lstm evaluate --checkpoint runs/x/model.npz --split test\n"
               "  ptb-lstm evaluate --checkpoint runs/x/model.npz --batch-size 1 --num-steps 1 "
               "--json")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a model.npz")
    _engine_args(p, ENGINES, dtype_default=None)
    p.add_argument("--data-dir", metavar="DIR", help=data_help)
    p.add_argument("--split", default="test", choices=("train", "valid", "test"),
                   help="which split (default: test)")
    p.add_argument("--batch-size", type=int, metavar="B",
                   help="streams evaluated side by side (default: the checkpoint's config)")
    p.add_argument("--num-steps", type=int, metavar="T",
                   help="time steps per evaluation step (default: the checkpoint's config)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: perplexity, tokens, split, ...")
    p.set_defaults(func=cmd_evaluate)

    # generate -----------------------------------------------------------------------------
    from ptb_lstm.text import NORMALIZATION_HELP

    p = commands.add_parser(
        "generate", formatter_class=_formatter, help="sample text from a trained model",
        description="Sample N words after a prompt, word by word, carrying the LSTM state. "
                    "The prompt is read as the start of a sentence and normalised the PTB way; "
                    "words outside the vocabulary become <unk> (with a warning). <eos> is "
                    "printed as a line break. The same --seed gives the same text.",
        epilog="examples:\n  ptb-lstm generate --checkpoint runs/x/model.npz --prompt "
               "\"the stock market\" --words 40\n"
               "  ptb-lstm generate --checkpoint runs/x/model.npz --temperature 0.7 --top-k 50 "
               "--seed 3")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a model.npz")
    p.add_argument("--prompt", default="", help="text to start from (default: none)")
    p.add_argument("--words", type=int, default=50, metavar="N",
                   help="words to sample (default: 50)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T",
                   help="divide the logits by T: below 1 is more conservative (default: 1)")
    p.add_argument("--top-k", type=int, default=0, metavar="K",
                   help="sample only among the K likeliest words (default: 0, all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (default: 0)")
    _engine_args(p, ENGINES, dtype_default=None)
    p.set_defaults(func=cmd_generate)

    # score --------------------------------------------------------------------------------
    p = commands.add_parser(
        "score", formatter_class=_formatter,
        help="perplexity and log-likelihood of any text under a model",
        description="Perplexity and total log-likelihood (natural log) of arbitrary text, read "
                    "as one stream after a sentence end. " + NORMALIZATION_HELP + " Words "
                    "outside the vocabulary become <unk> and are counted.",
        epilog="examples:\n  ptb-lstm score --checkpoint runs/x/model.npz --text \"the company "
               "said it expects profit to rise.\"\n"
               "  ptb-lstm score --checkpoint runs/x/model.npz --text-file news.txt "
               "--per-sentence --json")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a model.npz")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text itself")
    source.add_argument("--text-file", metavar="F", help="a UTF-8 text file")
    p.add_argument("--per-sentence", action="store_true",
                   help="also score each sentence on its own line")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: perplexity, tokens, unknown, log_likelihood")
    _engine_args(p, ENGINES, dtype_default=None)
    p.set_defaults(func=cmd_score)

    # inspect ------------------------------------------------------------------------------
    p = commands.add_parser(
        "inspect", formatter_class=_formatter, help="what a checkpoint holds",
        description="Config, vocabulary size, parameter names, shapes and count, training "
                    "progress, and the engine and dtype that wrote a checkpoint.",
        epilog="example:\n  ptb-lstm inspect runs/x/model.npz --json")
    p.add_argument("checkpoint", metavar="CKPT", help="a model.npz")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_inspect)

    # gradcheck ----------------------------------------------------------------------------
    p = commands.add_parser(
        "gradcheck", formatter_class=_formatter,
        help="check the NumPy back-propagation against finite differences",
        description="Compare the NumPy engine's gradients with central differences in float64 "
                    "on a tiny random model, for every entry of every parameter and of the "
                    "incoming state. Error of an array: max |analytic - numeric| / "
                    "max(max |analytic|, 1e-6). Fails (exit 1) above 1e-6.",
        epilog="example:\n  ptb-lstm gradcheck --dropout 0.5 --seed 3")
    p.add_argument("--seed", type=int, default=0, help="seed of the model and data (default: 0)")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="check with fixed dropout masks of this rate (default: 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_gradcheck)

    # agree --------------------------------------------------------------------------------
    p = commands.add_parser(
        "agree", formatter_class=_formatter,
        help="show that the other engines compute what the NumPy engine computes",
        description="From the same seeded weights and the same PTB batches, run a few "
                    "training steps with each engine, without dropout and with dropout 0.5 "
                    "(the same masks for every engine), and compare, against the NumPy "
                    "engine, the per-step losses, every parameter afterwards and the "
                    "perplexity of the first 4,000 valid tokens. A difference is "
                    "max |engine - numpy| / max |numpy|. Fails (exit 1) above 1e-9 in float64 "
                    "or 1e-4 in float32.",
        epilog="examples:\n  ptb-lstm agree\n  ptb-lstm agree --config small --steps 3 "
               "--dtype float64 --json")
    p.add_argument("--config", default="tiny", metavar=f"{presets}|FILE.toml",
                   help="model to compare on (default: tiny, 16 units, on the real PTB)")
    p.add_argument("--data-dir", metavar="DIR", help=data_help)
    p.add_argument("--engine", action="append", choices=[e for e in ENGINES if e != "numpy"],
                   help="engine to compare with numpy (repeatable; default: every other "
                        "one that is installed)")
    p.add_argument("--dtype", action="append", choices=("float32", "float64"),
                   help="floating-point type (repeatable; default: both)")
    p.add_argument("--dropout", action="append", type=float, metavar="RATE",
                   help="dropout rate to train with (repeatable; default: 0 and 0.5)")
    p.add_argument("--steps", type=int, default=5, help="training steps (default: 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_agree)

    # bench --------------------------------------------------------------------------------
    p = commands.add_parser(
        "bench", formatter_class=_formatter, help="time an engine's training and evaluation steps",
        description="Warm up, then time N training steps (forward, backward, clipped SGD) and "
                    "N evaluation steps on random PTB-shaped batches (vocabulary 10,000); "
                    "print the median ms per step, words per second and the estimated wall "
                    "time of the config's full training on PTB, evaluations included.",
        epilog="examples:\n  ptb-lstm bench --engine numpy --config small\n"
               "  ptb-lstm bench --engine tf-graph --config medium --steps 20 --json")
    _engine_args(p, ENGINES)
    p.add_argument("--config", default="small", metavar=f"{presets}|FILE.toml",
                   help="model and batch shape (default: small)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (repeatable)")
    p.add_argument("--steps", type=int, default=50, help="timed steps of each kind (default: 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (train_ms_per_step, eval_ms_per_step, ...)")
    p.set_defaults(func=cmd_bench)

    # plot ---------------------------------------------------------------------------------
    p = commands.add_parser(
        "plot", formatter_class=_formatter, help="learning curves of one or several runs",
        description="Draw, from each run folder's metrics.jsonl, the training perplexity "
                    "against the step (the mean so far in the epoch, as the training log "
                    "prints it, every --log-every steps) and the valid perplexity after each "
                    "epoch, every run on the same two panels, labelled by engine. Needs "
                    "matplotlib (pip install 'ptb-lstm[plot]').",
        epilog="examples:\n  ptb-lstm plot runs/x\n"
               "  ptb-lstm plot docs/results/numpy docs/results/tf-eager docs/results/tf-graph "
               "--log --out curves.png")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="folders written by 'ptb-lstm train' (they need metrics.jsonl)")
    p.add_argument("--out", metavar="FILE.png",
                   help="figure to write, .png, .pdf or .svg (default: RUN_DIR/curves.png for "
                        "one run, curves.png for several)")
    p.add_argument("--log", action="store_true", help="logarithmic perplexity axes")
    p.set_defaults(func=cmd_plot)
    return parser


def _engine_args(p: argparse.ArgumentParser, engines, dtype_default: str | None = "float32",
                 engine_default: str | None = "numpy"):
    from ptb_lstm.engines import DEVICES, engines_help

    p.add_argument("--engine", default=engine_default, choices=engines,
                   help=engines_help())
    default = dtype_default or "the checkpoint's"
    p.add_argument("--dtype", default=dtype_default, choices=("float32", "float64"),
                   help=f"floating-point type of the maths (default: {default})")
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="where the maths runs: auto (default: a GPU when the engine can use "
                        "one and its framework sees one), cpu or cuda")


def _positive(value: int | None, flag: str, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise UserError(f"{flag} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


# -- commands -------------------------------------------------------------------------------

def cmd_data(args) -> int:
    from ptb_lstm.config import load_config
    from ptb_lstm.data import SPLITS, is_official_ptb, load_corpus, num_batches

    config = load_config(args.config)
    data_dir = _locate(args.data_dir)
    corpus = load_corpus(data_dir)
    stats = {
        "data_dir": str(data_dir),
        "official_ptb": is_official_ptb(data_dir),
        "tokens": {s: int(len(corpus.split(s))) for s in SPLITS},
        "vocab_size": corpus.vocab_size,
        "batch_size": config.batch_size,
        "num_steps": config.num_steps,
        "steps_per_epoch": {s: num_batches(len(corpus.split(s)), config.batch_size,
                                           config.num_steps) for s in SPLITS},
    }
    if args.json:
        print(json.dumps(stats))
        return 0
    checked = "SHA-256 matches simple-examples.tgz" if stats["official_ptb"] else \
        "not the official PTB files (checksums differ)"
    print(f"data:        {data_dir} ({checked})")
    print(f"vocabulary:  {corpus.vocab_size:,} words")
    print(f"{'split':<6} {'tokens':>10} {'steps/epoch':>12}   "
          f"(batch {config.batch_size} x {config.num_steps} steps)")
    for s in SPLITS:
        print(f"{s:<6} {stats['tokens'][s]:>10,} {stats['steps_per_epoch'][s]:>12,}")
    return 0


def _locate(data_dir: str | None) -> Path:
    """Find PTB, drawing a bar while downloading it."""
    from ptb_lstm import data

    try:
        return data.locate_data_dir(data_dir, download=False)
    except UserError:
        if data_dir is not None or os.environ.get("PTB_DATA_DIR"):
            raise
    from tqdm import tqdm

    from ptb_lstm.download import PTB_URL, download_ptb

    cache = data.default_cache_dir()
    url = os.environ.get("PTB_DATA_URL") or PTB_URL
    print(f"PTB not found; downloading {url} into {cache}", file=sys.stderr)
    with tqdm(unit="B", unit_scale=True, file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return download_ptb(cache, url=url, progress=progress)


def cmd_train(args) -> int:
    import signal

    import numpy as np

    from ptb_lstm import checkpoint
    from ptb_lstm.config import PRESETS, apply_overrides, load_config, parse_sets
    from ptb_lstm.data import load_corpus
    from ptb_lstm.engines import create_engine
    from ptb_lstm.params import DTYPES, check_params, count_params, init_params
    from ptb_lstm.progress import ConsoleReporter, summary_table
    from ptb_lstm.train import Tee, resume_point, train

    _positive(args.epochs, "--epochs")
    _positive(args.max_steps, "--max-steps", allow_zero=True)
    _positive(args.log_every, "--log-every")
    _positive(args.checkpoint_every, "--checkpoint-every", allow_zero=True)
    resume, info = None, {}
    if args.resume:
        given = [flag for flag, value in (("--config", args.config), ("--out", args.out),
                                          ("--init-from", args.init_from), ("--set", args.set),
                                          ("--epochs", args.epochs), ("--seed", args.seed))
                 if value]
        if given:
            raise UserError(f"--resume continues a run with its own settings; drop "
                            f"{', '.join(given)}")
        out_dir = Path(args.resume)
        if not (out_dir / "model.npz").is_file():
            raise UserError(f"--resume {out_dir}: no model.npz there; pass the folder of a run "
                            "that `ptb-lstm train` wrote")
        saved = checkpoint.load(out_dir / "model.npz")
        info = _read_run_info(out_dir)
        config, params = saved.config, saved.params
        engine_name = args.engine or info.get("engine", saved.engine)
        dtype = args.dtype or info.get("dtype", saved.dtype)
        data_dir = args.data_dir or (info.get("data_dir") if Path(
            info.get("data_dir") or "/nonexistent").is_dir() else None)
        corpus = load_corpus(_locate(data_dir), vocab=saved.vocab)
        resume = resume_point(saved, out_dir)
    else:
        engine_name, dtype = args.engine or "numpy", args.dtype or "float32"
        start = checkpoint.load(args.init_from) if args.init_from else None
        if args.config is not None:
            config = load_config(args.config)
        else:
            config = start.config if start else PRESETS["small"]
        config = apply_overrides(config, parse_sets(args.set))
        if args.epochs is not None:
            config = config.replace(epochs=args.epochs)
        if args.seed is not None:
            config = apply_overrides(config, {"seed": args.seed}, source="--seed")
        out_dir = _new_run_dir(args.out, args.config or "small", engine_name)
        data_dir = _locate(args.data_dir)
        corpus = load_corpus(data_dir, vocab=start.vocab if start else None)
        if start:
            try:
                check_params(start.params, config, corpus.vocab_size,
                             f"--init-from {args.init_from}")
            except ValueError as error:
                raise UserError(f"{error}; pass the --config the checkpoint was trained with"
                                ) from None
            params = start.params
        else:
            params = init_params(config, corpus.vocab_size, DTYPES[dtype])
    log_every = args.log_every or info.get("log_every", 100)
    checkpoint_every = args.checkpoint_every if args.checkpoint_every is not None else \
        info.get("checkpoint_every", 500)
    engine = create_engine(engine_name, config, params, dtype=dtype, device=args.device)
    reporter = ConsoleReporter()
    if args.tensorboard:
        from ptb_lstm.tensorboard import TensorBoardReporter

        reporter = Tee(reporter, TensorBoardReporter(args.tensorboard))
    steps = (len(corpus.train) - 1) // (config.batch_size * config.num_steps)
    print(f"ptb-lstm {__version__}: engine {engine.name} on {engine.device}, {dtype}, "
          f"{count_params(params):,} parameters", flush=True)
    print(f"config: {_config_line(config)}")
    print(f"data: {corpus.data_dir} ({len(corpus.train):,} training tokens, {steps:,} "
          f"steps/epoch, vocabulary {corpus.vocab_size:,})")
    if resume:
        print(f"resuming {out_dir}/ at epoch {resume.epoch}, after step {resume.step:,}",
              flush=True)
    else:
        print(f"writing to {out_dir}/", flush=True)
    run_info = {"command": "ptb-lstm " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                "data_dir": str(corpus.data_dir), "init_from": args.init_from,
                "numpy_version": np.__version__, "ptb_lstm_version": __version__,
                "log_every": log_every, "checkpoint_every": checkpoint_every,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    stop = {"requested": False}

    def on_interrupt(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt  # a second Ctrl-C aborts at once
        stop["requested"] = True
        print("\nCtrl-C: saving a checkpoint after this step (press again to abort)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = train(config, corpus, engine, out_dir, max_steps=args.max_steps,
                       log_every=log_every, reporter=reporter, run_info=run_info,
                       checkpoint_every=checkpoint_every, resume=resume,
                       stop_requested=lambda: stop["requested"])
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.stopped == "interrupted":
        print(f"ptb-lstm: interrupted after step {result.steps:,}; the checkpoint "
              f"{out_dir / 'model.npz'} is saved. Resume with: ptb-lstm train --resume "
              f"{shlex.quote(str(out_dir))}", file=sys.stderr)
        return 130
    if args.max_steps == 0 and resume is None:
        print(f"wrote the initial checkpoint {out_dir / 'model.npz'}")
        return 0
    print()
    if result.epochs:
        print(summary_table(result.epochs))
    last = result.epochs[-1] if result.epochs else None
    train_ppl = f"{last['train_perplexity']:.2f}" if last else "-"
    valid_ppl = f"{result.valid.perplexity:.2f}" if result.valid else "-"
    test_ppl = f"{result.test.perplexity:.2f}" if result.test else "-"
    print(f"\ntrain perplexity {train_ppl}   valid perplexity {valid_ppl}   "
          f"test perplexity {test_ppl}")
    print(f"{result.steps:,} steps in {result.wall_time / 60:.1f} min; model: "
          f"{out_dir / 'model.npz'}")
    if result.stopped == "max_steps":
        print(f"stopped by --max-steps; continue with: ptb-lstm train --resume "
              f"{shlex.quote(str(out_dir))}")
    return 0


def _read_run_info(run_dir: Path) -> dict:
    try:
        info = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _config_line(config) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in config.to_dict().items())


def _new_run_dir(out: str | None, config_name: str, engine: str) -> Path:
    if out is None:
        stem = Path(config_name).stem
        base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}-{engine}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return path
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"--out {path} already exists and is not an empty folder; "
                        "choose a new folder so no earlier run is overwritten")
    return path


def cmd_evaluate(args) -> int:
    from ptb_lstm import checkpoint
    from ptb_lstm.data import load_corpus, num_batches
    from ptb_lstm.engines import create_engine
    from ptb_lstm.evaluate import evaluate
    from ptb_lstm.progress import ConsoleReporter

    _positive(args.batch_size, "--batch-size")
    _positive(args.num_steps, "--num-steps")
    ckpt = checkpoint.load(args.checkpoint)
    corpus = load_corpus(_locate(args.data_dir), vocab=ckpt.vocab)
    batch_size = args.batch_size or ckpt.config.batch_size
    num_steps = args.num_steps or ckpt.config.num_steps
    dtype = args.dtype or ckpt.dtype
    engine = create_engine(args.engine, ckpt.config, ckpt.params, dtype=dtype,
                           device=args.device)
    started = time.perf_counter()
    reporter = ConsoleReporter()  # a bar on a terminal, silent in a log
    ids = corpus.split(args.split)
    reporter.eval_start(args.split, num_batches(len(ids), batch_size, num_steps))
    result = evaluate(engine, ids, batch_size, num_steps, on_step=reporter.eval_step)
    reporter.eval_end(args.split, result)
    record = {"split": args.split, **result.to_dict(), "checkpoint": args.checkpoint,
              "engine": engine.name, "dtype": dtype,
              "seconds": round(time.perf_counter() - started, 3)}
    if args.json:
        print(json.dumps(record))
    else:
        print(f"{args.split} perplexity {result.perplexity:.3f} over {result.tokens:,} tokens "
              f"(batch {batch_size} x {num_steps} steps, {engine.name}, {dtype}, "
              f"{record['seconds']:.1f} s)")
    return 0


def _load_for_use(args):
    """The checkpoint and an engine holding it, for generate and score."""
    from ptb_lstm import checkpoint
    from ptb_lstm.engines import create_engine

    ckpt = checkpoint.load(args.checkpoint)
    engine = create_engine(args.engine, ckpt.config, ckpt.params, dtype=args.dtype or ckpt.dtype,
                           device=args.device)
    return ckpt, engine


def cmd_generate(args) -> int:
    from ptb_lstm.generate import generate
    from ptb_lstm.text import normalize, to_ids

    _positive(args.words, "--words")
    _positive(args.top_k, "--top-k", allow_zero=True)
    if not args.temperature > 0:
        raise UserError(f"--temperature must be > 0, got {args.temperature}")
    ckpt, engine = _load_for_use(args)
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


def cmd_score(args) -> int:
    from ptb_lstm.score import score_text

    if args.text_file is not None:
        try:
            text = Path(args.text_file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"--text-file {args.text_file} does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--text-file {args.text_file}: cannot read it as UTF-8 text "
                            f"({error})") from None
    else:
        text = args.text
    ckpt, engine = _load_for_use(args)
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
        for sentence in result.sentences:
            print(f"{sentence.perplexity:10.2f}  {sentence.log_likelihood:9.2f}  {sentence.text}")
        print()
    print(f"perplexity {result.perplexity:.2f}, log-likelihood {result.log_likelihood:.2f} "
          f"over {result.tokens} tokens ({result.unknown} unknown, scored as <unk>)")
    return 0


def cmd_inspect(args) -> int:
    from ptb_lstm import checkpoint
    from ptb_lstm.params import count_params

    ckpt = checkpoint.load(args.checkpoint)
    shapes = {name: list(value.shape) for name, value in ckpt.params.items()}
    record = {"checkpoint": args.checkpoint, "format_version": checkpoint.VERSION,
              "engine": ckpt.engine, "dtype": ckpt.dtype, "vocab_size": len(ckpt.vocab),
              "parameters": count_params(ckpt.params), "shapes": shapes,
              "config": ckpt.config.to_dict(),
              "progress": {k: v for k, v in ckpt.progress.items() if k != "rng_state"},
              "carried_state": ckpt.carried is not None}
    if args.json:
        print(json.dumps(record))
        return 0
    print(f"checkpoint:  {args.checkpoint} (ptb-lstm format {checkpoint.VERSION})")
    print(f"written by:  engine {ckpt.engine}, {ckpt.dtype}")
    print(f"vocabulary:  {len(ckpt.vocab):,} words")
    print(f"config:      {_config_line(ckpt.config)}")
    progress = record["progress"]
    if progress:
        print("progress:    " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in progress.items()))
    if ckpt.carried is not None:
        print("             (holds the carried state, for an exact --resume mid-epoch)")
    print(f"parameters:  {record['parameters']:,}")
    for name, shape in shapes.items():
        print(f"  {name:<26} {' x '.join(map(str, shape)):>14}")
    return 0


def cmd_gradcheck(args) -> int:
    from ptb_lstm.gradcheck import TOLERANCE, gradcheck

    if not 0 <= args.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {args.dropout}")
    rows = gradcheck(seed=args.seed, dropout=args.dropout)
    worst = max(rows, key=lambda r: r.error)
    passed = worst.error <= TOLERANCE
    if args.json:
        print(json.dumps({"passed": passed, "tolerance": TOLERANCE, "worst_error": worst.error,
                          "worst": worst.name, "rows": [r.summary() for r in rows]}))
    else:
        print(f"{'array':<26} {'entries':>7} {'max |grad|':>11} {'error':>10}")
        for r in rows:
            print(f"{r.name:<26} {r.entries:>7} {r.max_abs_grad:>11.3e} {r.error:>10.2e}")
        verdict = "PASSED" if passed else "FAILED"
        print(f"worst error {worst.error:.2e} ({worst.name}); tolerance {TOLERANCE:g}: {verdict}")
    return 0 if passed else 1


def cmd_agree(args) -> int:
    from ptb_lstm.agreement import compare
    from ptb_lstm.config import load_config
    from ptb_lstm.data import load_corpus
    from ptb_lstm.engines import installed_engines

    _positive(args.steps, "--steps")
    limits = {"float64": 1e-9, "float32": 1e-4}
    rates = args.dropout or [0.0, 0.5]
    for rate in rates:
        if not 0 <= rate < 1:
            raise UserError(f"--dropout must be in [0, 1), got {rate}")
    config = load_config(args.config)
    corpus = load_corpus(_locate(args.data_dir))
    engines = args.engine or [e for e in installed_engines() if e != "numpy"]
    rows = [row for rate in rates for dtype in (args.dtype or ["float64", "float32"])
            for row in compare(engines, config.replace(dropout=rate), corpus, dtype,
                               steps=args.steps)]
    passed = all(max(r.loss, r.params, r.perplexity) <= limits[r.dtype] for r in rows)
    if args.json:
        print(json.dumps({"passed": passed, "config": {**config.to_dict(), "dropout": rates},
                          "limits": limits,
                          "rows": [r.to_dict() for r in rows]}))
    else:
        print(f"against numpy, {args.steps} training steps of {args.config} on "
              f"{corpus.data_dir}; relative differences:")
        print(f"{'engine':<9} {'dtype':<8} {'dropout':>7} {'losses':>9} {'params':>9} "
              f"{'valid ppl':>10}  worst parameter")
        for r in rows:
            print(f"{r.engine:<9} {r.dtype:<8} {r.dropout:>7g} {r.loss:>9.2e} {r.params:>9.2e} "
                  f"{r.perplexity:>10.2e}  {r.worst_param}")
        print(f"limits: 1e-9 in float64, 1e-4 in float32: {'PASSED' if passed else 'FAILED'}")
    return 0 if passed else 1


def cmd_bench(args) -> int:
    from ptb_lstm.bench import bench
    from ptb_lstm.config import apply_overrides, load_config, parse_sets

    _positive(args.steps, "--steps")
    _positive(args.warmup, "--warmup", allow_zero=True)
    config = apply_overrides(load_config(args.config), parse_sets(args.set))
    result = bench(args.engine, config, steps=args.steps, warmup=args.warmup, dtype=args.dtype,
                   device=args.device)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"{result.engine} on {result.device}, {result.dtype}, {args.config} "
          f"(batch {result.batch_size} x {result.num_steps} steps, hidden {result.hidden_size}), "
          f"median of {result.steps} steps:")
    print(f"  train {result.train_ms_per_step:8.1f} ms/step  "
          f"({result.words_per_second:,.0f} words/s)")
    print(f"  eval  {result.eval_ms_per_step:8.1f} ms/step")
    print(f"  full training of {config.epochs} epochs on PTB: about "
          f"{result.full_training_hours * 60:.0f} min")
    return 0


def cmd_plot(args) -> int:
    from ptb_lstm.plot import labels, load_run, plot_runs

    runs = [load_run(d) for d in args.runs]
    out = args.out or (Path(args.runs[0]) / "curves.png" if len(runs) == 1 else "curves.png")
    written = plot_runs(runs, out, log=args.log)
    for run, label in zip(runs, labels(runs), strict=True):
        last = run.epochs[-1] if run.epochs else None
        valid = f"valid {last['valid_perplexity']:.2f} after epoch {last['epoch']}" if last \
            else f"no epoch finished (step {run.steps[-1]['step']})"
        test = f", test {run.test:.2f}" if run.test is not None else ""
        print(f"{label}: {valid}{test}")
    print(f"wrote {written}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as error:
        print(f"ptb-lstm: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ptb-lstm: interrupted", file=sys.stderr)
        return 130
