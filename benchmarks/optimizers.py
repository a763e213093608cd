"""SGD, Adam and AMSGrad on the small config: a learning-rate sweep, then 13 epochs each.

1. The sweep. For each optimizer, each candidate learning rate trains the first
   ``--sweep-steps`` steps (default 1,000, 43% of the first epoch, at the full rate) from the
   config's seed, and the run's valid perplexity after them is read from its metrics (the
   trainer evaluates the whole valid split when it stops). The candidate with the lowest wins
   (the smaller rate on a tie). Candidates: SGD 0.5, 1 (the paper's) and 2; Adam and AMSGrad
   0.0005, 0.001, 0.002 and 0.004 (around the usual 0.001). A short sweep favours rates that
   learn fast at first; it is cheap (about 11 x 1,000 steps) and says what it measured.
2. The runs. Each optimizer trains the whole config (13 epochs for small, its schedule:
   full rate for 4 epochs, then halved every epoch) at its chosen rate, from the same seed.

``--only OPTIMIZER`` sweeps and trains that optimizer alone and publishes nothing (each
optimizer's rate is chosen among its own candidates), so that the three can train side by side
in three processes; a last call without it finds every run done and publishes.

Every run is an ordinary ``ptb-lstm train`` run folder (the command runs in this process)
under ``--runs`` (default ``runs/optimizers``): ``sweep/OPTIMIZER-lrRATE`` and ``OPTIMIZER``.
A finished one is kept, an interrupted one resumed (``--resume``), so the command can be
stopped and started again.
Published, never the checkpoints: ``--results`` (default ``docs/results/optimizers``) gets
``sweep.json`` (every candidate's valid perplexity and the choice), ``OPTIMIZER/config.json``
and ``OPTIMIZER/metrics.jsonl`` of each run (data folder shown as ``$PTB_DATA_DIR``) and
``summary.json`` (per optimizer: rate, train / valid / test perplexity, epochs, run time); and
``--figure`` (default ``docs/figures/results-optimizers.png``) the three valid curves.

    python benchmarks/optimizers.py                      # sweep, three runs, publish
    python benchmarks/optimizers.py --sweep-only         # the sweep alone
    python benchmarks/optimizers.py --only adam          # adam's sweep and run alone
    python benchmarks/optimizers.py --config tiny --data-dir DIR --sweep-steps 5 \\
        --rates sgd=1 --rates adam=0.01,0.02 --runs /tmp/o --results /tmp/o/r  # a try
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from reproduce import machine, public_config

REPO = Path(__file__).resolve().parents[1]
OPTIMIZERS = ("sgd", "adam", "amsgrad")
RATES = {
    "sgd": (0.5, 1.0, 2.0),
    "adam": (0.0005, 0.001, 0.002, 0.004),
    "amsgrad": (0.0005, 0.001, 0.002, 0.004),
}


def records(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def checkpoint_progress(run: Path) -> dict:
    from ptb_lstm import checkpoint

    return checkpoint.load(run / "model.npz").progress


def ptb_lstm(*args: str) -> None:
    """Run ``ptb-lstm ARGS`` in this process (one start-up for all the runs), with sys.argv
    set to it, so that config.json records the command as typed; fail loudly."""
    from ptb_lstm.cli import main

    print("$ ptb-lstm " + " ".join(args), flush=True)
    saved, sys.argv = sys.argv, ["ptb-lstm", *args]
    try:
        status = main(list(args))
    finally:
        sys.argv = saved
    if status == 130:  # Ctrl-C or SIGTERM: the run saved its checkpoint
        print("optimizers: interrupted; the same command continues every run", file=sys.stderr)
        sys.exit(130)
    if status != 0:
        sys.exit(f"optimizers: 'ptb-lstm {' '.join(args)}' failed (exit {status})")


def train(run: Path, args: list[str], done: bool, stop: list[str] = ()) -> None:
    """``ptb-lstm train ARGS STOP --out RUN``, or ``--resume RUN STOP`` when it stopped before
    it was ``done``."""
    if done:
        print(f"{run} is done; keeping it", flush=True)
    elif (run / "model.npz").is_file():
        ptb_lstm("train", "--resume", str(run), *stop, *DATA)
    else:
        run.parent.mkdir(parents=True, exist_ok=True)
        ptb_lstm("train", *args, *stop, "--out", str(run), *DATA)


def run_args(config: str, engine: str, optimizer: str, rate: float) -> list[str]:
    """The ``ptb-lstm train`` options of one run of the comparison."""
    return [
        "--config",
        config,
        "--engine",
        engine,
        "--set",
        f"optimizer={optimizer}",
        "--set",
        f"learning_rate={rate!r}",
    ]


def rate_name(rate: float) -> str:
    return f"{rate:g}"


def sweep(config: str, engine: str, steps: int, runs: Path, optimizers=OPTIMIZERS) -> dict:
    """Every candidate's valid perplexity after ``steps`` steps, and the chosen rates."""
    rows = []
    for optimizer in optimizers:
        for rate in RATES[optimizer]:
            run = runs / "sweep" / f"{optimizer}-lr{rate_name(rate)}"
            progress = checkpoint_progress(run) if (run / "model.npz").is_file() else {}
            done = int(progress.get("step", 0)) >= steps or bool(progress.get("finished"))
            train(
                run,
                [
                    *run_args(config, engine, optimizer, rate),
                    "--log-every",
                    str(max(1, steps // 10)),
                ],
                done,
                stop=["--max-steps", str(steps)],
            )
            # The trainer evaluates the valid split when --max-steps stops it (and after
            # every epoch, for a config shorter than the sweep).
            evaluated = [
                r
                for r in records(run)
                if r.get("event") in ("partial_epoch", "epoch") and r["step"] <= steps
            ]
            if not evaluated:
                sys.exit(f"optimizers: {run} has no valid perplexity by step {steps}")
            rows.append(
                {
                    "optimizer": optimizer,
                    "learning_rate": rate,
                    "steps": evaluated[-1]["step"],
                    "valid_perplexity": evaluated[-1]["valid_perplexity"],
                }
            )
    chosen = {}
    for optimizer in optimizers:
        mine = [r for r in rows if r["optimizer"] == optimizer]
        best = min(mine, key=lambda r: (r["valid_perplexity"], r["learning_rate"]))
        chosen[optimizer] = best["learning_rate"]
    return {
        "config": config,
        "engine": engine,
        "steps": steps,
        "rule": "lowest valid perplexity after the sweep's steps; the smaller rate on a tie",
        "candidates": rows,
        "chosen": chosen,
    }


def run_one(run: Path, optimizer: str, rate: float, config: str, engine: str) -> None:
    """The whole config with ``optimizer`` at ``rate``, kept when finished, else resumed."""
    done = (run / "model.npz").is_file() and bool(checkpoint_progress(run).get("finished"))
    train(run, run_args(config, engine, optimizer, rate), done)


def summary(run: Path, optimizer: str, rate: float) -> dict:
    rows = records(run)
    epochs = [r for r in rows if r.get("event") == "epoch"]
    test = [r for r in rows if r.get("event") == "test"]
    return {
        "optimizer": optimizer,
        "learning_rate": rate,
        "epochs": len(epochs),
        "train_perplexity": epochs[-1]["train_perplexity"] if epochs else None,
        "valid_perplexity": epochs[-1]["valid_perplexity"] if epochs else None,
        "best_valid_perplexity": min(r["valid_perplexity"] for r in epochs) if epochs else None,
        "test_perplexity": test[-1]["test_perplexity"] if test else None,
        "run_time": (test or epochs or [{}])[-1].get("run_time"),
    }


def publish(run: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    info = json.loads((run / "config.json").read_text(encoding="utf-8"))
    info.setdefault("machine", machine())
    info = public_config(info)
    # The run folder as a reader would name it, not as a path of the training machine.
    try:
        shown = str(run.resolve().relative_to(REPO))
    except ValueError:
        shown = f"runs/optimizers/{run.name}"
    info["command"] = " ".join(
        shown if word == str(run) else word for word in info.get("command", "").split(" ")
    )
    (target / "config.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(run / "metrics.jsonl", target / "metrics.jsonl")


def figure(runs: dict[str, Path], rates: dict, path: Path, config: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for optimizer, run in runs.items():
        epochs = [r for r in records(run) if r.get("event") == "epoch"]
        ax.plot(
            [r["epoch"] for r in epochs],
            [r["valid_perplexity"] for r in epochs],
            marker="o",
            ms=3,
            label=f"{optimizer}, learning rate {rate_name(rates[optimizer])}",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("valid perplexity")
    ax.set_yscale("log")
    ax.set_title(f"{config} config: valid perplexity per epoch by optimizer")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


DATA: list[str] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="small", help="preset or TOML file (default: small)")
    parser.add_argument("--engine", default="numpy", help="engine of every run (default: numpy)")
    parser.add_argument("--data-dir", help="PTB's folder (default: where ptb-lstm finds it)")
    parser.add_argument(
        "--sweep-steps",
        type=int,
        default=1000,
        help="training steps of each sweep candidate (default: 1000)",
    )
    parser.add_argument("--sweep-only", action="store_true", help="stop after the sweep")
    parser.add_argument(
        "--only",
        action="append",
        choices=OPTIMIZERS,
        help="sweep and train this optimizer alone, publish nothing (repeatable)",
    )
    parser.add_argument(
        "--rates",
        action="append",
        default=[],
        metavar="OPTIMIZER=R,R,...",
        help="replace an optimizer's candidate learning rates (repeatable)",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=REPO / "runs" / "optimizers",
        help="folder of the run folders (default: runs/optimizers)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=REPO / "docs" / "results" / "optimizers",
        help="where the JSON and metrics are published",
    )
    parser.add_argument(
        "--figure", type=Path, default=REPO / "docs" / "figures" / "results-optimizers.png"
    )
    args = parser.parse_args()
    if args.sweep_steps < 1:
        sys.exit("optimizers: --sweep-steps must be at least 1")
    for given in args.rates:
        optimizer, _, values = given.partition("=")
        try:
            RATES[optimizer] = tuple(float(v) for v in values.split(","))
        except ValueError:
            sys.exit(f"optimizers: --rates {given}: expected OPTIMIZER=R,R,... with numbers")
        if optimizer not in OPTIMIZERS or not all(r > 0 for r in RATES[optimizer]):
            sys.exit(
                f"optimizers: --rates {given}: the optimizer is one of "
                f"{', '.join(OPTIMIZERS)}, the rates are > 0"
            )
    if args.data_dir:
        DATA[:] = ["--data-dir", args.data_dir]
    if args.only:
        chosen = sweep(args.config, args.engine, args.sweep_steps, args.runs, tuple(args.only))
        if not args.sweep_only:
            for optimizer in args.only:
                rate = chosen["chosen"][optimizer]
                run_one(args.runs / optimizer, optimizer, rate, args.config, args.engine)
        return
    chosen = sweep(args.config, args.engine, args.sweep_steps, args.runs)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "sweep.json").write_text(json.dumps(chosen, indent=2) + "\n", encoding="utf-8")
    print("\nsweep: valid perplexity after", args.sweep_steps, "steps")
    for row in chosen["candidates"]:
        mark = " <-" if chosen["chosen"][row["optimizer"]] == row["learning_rate"] else ""
        print(
            f"  {row['optimizer']:<8} lr {rate_name(row['learning_rate']):<7} "
            f"{row['valid_perplexity']:10.2f}{mark}"
        )
    if args.sweep_only:
        return
    rates = chosen["chosen"]
    runs = {optimizer: args.runs / optimizer for optimizer in OPTIMIZERS}
    for optimizer, run in runs.items():
        run_one(run, optimizer, rates[optimizer], args.config, args.engine)
        publish(run, args.results / optimizer)
    rows = [summary(runs[o], o, rates[o]) for o in OPTIMIZERS]
    (args.results / "summary.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    figure(runs, rates, args.figure, args.config)
    print("\n| optimizer | learning rate | train | valid | best valid | test | run time |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        minutes = f"{r['run_time'] / 60:.0f} min" if r["run_time"] else "–"
        print(
            f"| {r['optimizer']} | {rate_name(r['learning_rate'])} | "
            f"{r['train_perplexity']:.2f} | {r['valid_perplexity']:.2f} | "
            f"{r['best_valid_perplexity']:.2f} | {r['test_perplexity']:.2f} | {minutes} |"
        )


if __name__ == "__main__":
    main()
