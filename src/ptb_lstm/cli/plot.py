"""``ptb-lstm plot``: learning curves of one or several runs."""

from __future__ import annotations

from pathlib import Path

HELP = "learning curves of one or several runs"
DESCRIPTION = (
    "Draw, from each run folder's metrics.jsonl, the training perplexity "
    "against the step (the mean so far in the epoch, as the training log "
    "prints it, every --log-every steps) and the valid perplexity after each "
    "epoch, every run on the same two panels, labelled by engine. Needs "
    "matplotlib (installed with ptb-lstm)."
)
EPILOG = (
    "examples:\n  ptb-lstm plot runs/x\n"
    "  ptb-lstm plot docs/results/numpy docs/results/tf-eager docs/results/tf-graph "
    "--log --out curves.png"
)


def add_arguments(p):
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_DIR",
        help="folders written by 'ptb-lstm train' (they need metrics.jsonl)",
    )
    p.add_argument(
        "--out",
        metavar="FILE.png",
        help="figure to write, .png, .pdf or .svg (default: RUN_DIR/curves.png for "
        "one run, curves.png for several)",
    )
    p.add_argument("--log", action="store_true", help="logarithmic perplexity axes")


def run(args) -> int:
    from ptb_lstm.plot import labels, load_run, plot_runs

    runs = [load_run(d) for d in args.runs]
    out = args.out or (Path(args.runs[0]) / "curves.png" if len(runs) == 1 else "curves.png")
    written = plot_runs(runs, out, log=args.log)
    for run_, label in zip(runs, labels(runs), strict=True):
        last = run_.epochs[-1] if run_.epochs else None
        valid = (
            f"valid {last['valid_perplexity']:.2f} after epoch {last['epoch']}"
            if last
            else f"no epoch finished (step {run_.steps[-1]['step']})"
        )
        test = f", test {run_.test:.2f}" if run_.test is not None else ""
        print(f"{label}: {valid}{test}")
    print(f"wrote {written}")
    return 0
