"""``ptb-lstm train``: flags to a run (``ptb_lstm.runs``), the run to the training loop
(``ptb_lstm.train``), and what a person reads while it runs and at the end."""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ptb_lstm import __version__
from ptb_lstm.cli import options

if TYPE_CHECKING:
    from ptb_lstm.engines import Engine
    from ptb_lstm.metrics import Reporter
    from ptb_lstm.runs import PreparedRun
    from ptb_lstm.train import TrainResult

HELP = "train a model, printing perplexities"
DESCRIPTION = (
    "Train with the paper's schedule: SGD (or, with --set optimizer=adam|amsgrad, "
    "Adam or AMSGrad with beta1, beta2 and epsilon) at learning_rate for "
    "epochs_at_full_lr epochs, then multiplied by lr_decay every epoch; valid "
    "perplexity after each epoch, test perplexity at the end. Writes "
    "model.npz (after every epoch and at the end), config.json and "
    "metrics.jsonl into --out."
)
EPILOG = (
    "examples:\n"
    "  ptb-lstm train --config small\n"
    "  ptb-lstm train --config small --engine tf-graph --epochs 1\n"
    "  ptb-lstm train --resume runs/20261129-101500-small-numpy\n"
    "  ptb-lstm train --config tiny --set hidden_size=32 --max-steps 100 --out runs/t\n"
    "  ptb-lstm train --config small --set optimizer=adam --set learning_rate=0.002\n"
    "  ptb-lstm train --init-from runs/t/model.npz --set learning_rate=0.5"
)


def add_arguments(p):
    options.add_config(
        p,
        help="a preset or a TOML file with every field, or 'preset = "
        '"small"\' and the fields to change (default: small, or the '
        "--init-from checkpoint's)",
    )
    options.add_engine(
        p, default=None, dtype_default=None, dtype_shown="float32, or the resumed run's"
    )
    options.add_data_dir(p)
    p.add_argument(
        "--out",
        metavar="DIR",
        help="new or empty folder for the run, or one where a start wrote no "
        "checkpoint (default: runs/DATE-TIME-CONFIG-ENGINE); one training "
        "at a time writes into a folder",
    )
    p.add_argument("--epochs", type=int, metavar="N", help="override the config's epochs")
    p.add_argument(
        "--max-steps",
        type=int,
        metavar="N",
        help="stop after N training steps in all (0 writes the initial checkpoint)",
    )
    p.add_argument(
        "--init-from",
        metavar="CKPT",
        help="start from this checkpoint's weights and vocabulary (Adam's and "
        "AMSGrad's state starts afresh, at t = 0)",
    )
    p.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help="seed of the initial weights and dropout (default: the config's)",
    )
    options.add_set(p, help="override a config field, e.g. --set hidden_size=100 (repeatable)")
    _add_record_arguments(p)


def _add_record_arguments(p) -> None:
    """The flags of what the run records: metrics, checkpoints, resuming, TensorBoard."""
    p.add_argument(
        "--log-every",
        type=int,
        metavar="N",
        help="write a metrics.jsonl record every N steps (default: 100, or the resumed run's)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="also rewrite model.npz every N steps, with the carried state, so "
        "--resume loses little (default: 500, or the resumed run's; 0: only "
        "after each epoch)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from RUN_DIR/model.npz with its own config, "
        "engine and dtype; it ends with the parameters of an uninterrupted run "
        "(tested bit for bit in float64 with every engine, dropout included)",
    )
    p.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also write TensorBoard scalars (loss, perplexity, learning rate, "
        "gradient norm, words/s) into DIR; needs TensorFlow",
    )


def run(args) -> int:
    from ptb_lstm.config import parse_sets
    from ptb_lstm.engines import create_engine
    from ptb_lstm.progress import ConsoleReporter
    from ptb_lstm.runs import RunRequest, prepare
    from ptb_lstm.train import train

    options.positive(args.epochs, "--epochs")
    options.positive(args.max_steps, "--max-steps", allow_zero=True)
    options.positive(args.log_every, "--log-every")
    options.positive(args.checkpoint_every, "--checkpoint-every", allow_zero=True)
    if args.tensorboard:
        options.writable_folder(args.tensorboard, "--tensorboard")
    run_ = prepare(
        RunRequest(
            config=args.config,
            overrides=parse_sets(args.set),
            epochs=args.epochs,
            seed=args.seed,
            engine=args.engine,
            dtype=args.dtype,
            out=args.out,
            init_from=args.init_from,
            resume=args.resume,
            data_dir=args.data_dir,
            log_every=args.log_every,
            checkpoint_every=args.checkpoint_every,
        ),
        locate=options.locate,
    )
    try:
        config = run_.config
        engine = create_engine(
            run_.engine, config, run_.params, dtype=run_.dtype, device=args.device
        )
        reporters: list[Reporter] = [ConsoleReporter()]
        if args.tensorboard:
            from ptb_lstm.tensorboard import TensorBoardReporter

            reporters.append(TensorBoardReporter(args.tensorboard))
        _print_start(engine, run_)
        with _stop_on_ctrl_c() as stop_requested:
            result = train(
                config,
                run_.corpus,
                engine,
                run_.out_dir,
                max_steps=args.max_steps,
                log_every=run_.log_every,
                reporters=reporters,
                run_info=_run_info(args, run_),
                checkpoint_every=run_.checkpoint_every,
                resume=run_.resume,
                stop_requested=stop_requested,
            )
        return _print_outcome(args, run_, result)
    finally:
        run_.release()


def _print_start(engine: Engine, run_: PreparedRun) -> None:
    """What runs, on what data, into which folder."""
    from ptb_lstm.params import count_params

    config, corpus = run_.config, run_.corpus
    steps = (len(corpus.train) - 1) // (config.batch_size * config.num_steps)
    print(
        f"ptb-lstm {__version__}: engine {engine.name} on {engine.device}, {run_.dtype}, "
        f"{count_params(run_.params):,} parameters",
        flush=True,
    )
    print(f"config: {options.config_line(config)}")
    print(
        f"data: {corpus.data_dir} ({len(corpus.train):,} training tokens, {steps:,} "
        f"steps/epoch, vocabulary {corpus.vocab_size:,})"
    )
    if run_.resume:
        print(
            f"resuming {run_.out_dir}/ at epoch {run_.resume.epoch}, after step "
            f"{run_.resume.step:,}",
            flush=True,
        )
    else:
        print(f"writing to {run_.out_dir}/", flush=True)
    if run_.init_note:
        print(run_.init_note, flush=True)


def _run_info(args, run_: PreparedRun) -> dict:
    """What config.json records beside the config: how the run was started."""
    import numpy as np

    return {
        "command": "ptb-lstm " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "data_dir": str(run_.corpus.data_dir),
        "init_from": args.init_from,
        "numpy_version": np.__version__,
        "ptb_lstm_version": __version__,
        "log_every": run_.log_every,
        "checkpoint_every": run_.checkpoint_every,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


@contextlib.contextmanager
def _stop_on_ctrl_c() -> Iterator[Callable[[], bool]]:
    """Yields whether Ctrl-C (SIGINT) or SIGTERM came: the training then saves a checkpoint
    after its step and stops; a second one aborts at once."""
    requested = False

    def on_signal(signum, frame) -> None:
        nonlocal requested
        if requested:
            raise KeyboardInterrupt
        requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(
            f"\n{name}: saving a checkpoint after this step (send it again to abort)",
            file=sys.stderr,
            flush=True,
        )

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_outcome(args, run_: PreparedRun, result: TrainResult) -> int:
    """The run's results, its figure and the commands that use the model; the exit status."""
    from ptb_lstm.progress import summary_table

    out_dir, resume = run_.out_dir, run_.resume
    if result.stopped == "interrupted":
        print(
            f"ptb-lstm: interrupted after step {result.steps:,}; the checkpoint "
            f"{out_dir / 'model.npz'} is saved. Resume with: {options.program()} train --resume "
            f"{shlex.quote(options.typed_path(out_dir))}",
            file=sys.stderr,
        )
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
    print(
        f"\ntrain perplexity {train_ppl}   valid perplexity {valid_ppl}   "
        f"test perplexity {test_ppl}"
    )
    this_process = (
        f" ({result.wall_time / 60:.1f} of them in this process)" if resume is not None else ""
    )
    print(
        f"{result.steps:,} steps in {result.run_time / 60:.1f} min{this_process}; model: "
        f"{out_dir / 'model.npz'}"
    )
    data_dir = run_.corpus.data_dir if args.data_dir else None
    _next_steps(out_dir, data_dir, stopped_early=result.stopped == "max_steps")
    return 0


def _next_steps(out_dir, data_dir, stopped_early: bool) -> None:
    """The run's figure, then the commands that use the model, spelled to run as printed
    (with the run's --data-dir when one was given)."""
    from ptb_lstm.errors import UserError
    from ptb_lstm.plot import load_run, plot_runs

    me = options.program()
    run_dir = shlex.quote(options.typed_path(out_dir))
    model = shlex.quote(options.typed_path(out_dir / "model.npz"))
    try:
        figure = plot_runs([load_run(out_dir)], out_dir / "curves.png")
        print(f"\nfigure: {options.typed_path(figure)} (training and valid perplexity)")
    except UserError as error:  # too short a run to plot, or no matplotlib: the model stands
        print(f"\nno figure: {error}")
    data = f" --data-dir {shlex.quote(options.typed_path(data_dir))}" if data_dir else ""
    print("next:")
    if stopped_early:
        print(f"  {me} train --resume {run_dir}   # continue this run")
    print(
        f"  {me} generate --checkpoint {model} --prompt 'the stock market' --words 30\n"
        f"  {me} score --checkpoint {model} --text 'the company said profits rose' "
        f"--per-sentence\n"
        f"  {me} evaluate --checkpoint {model} --split test{data}\n"
        f"  {me} plot {run_dir} --log --out "
        f"{shlex.quote(options.typed_path(out_dir / 'curves-log.png'))}"
    )
