"""The NumPy engine as it is against another commit's, or against itself without one of its
optimisations, interleaved (A/B).

An optimisation of the engine stays only where it pays; this measures what it pays. The
baseline engine is read from git (``src/ptb_lstm/engines/numpy_engine.py`` at ``--baseline``,
with the private modules of engines/ that the tree no longer has) and both engines train and
evaluate on the same random PTB-shaped batches, each in a process of its own (as a training
run has its engine alone), taking turns in rounds (A B, then B A, ...) while the other waits,
so that the noise of the machine falls on both alike. Prints, per size, the median ms of a
training and an evaluation step of each, how much faster the current one is, and the median
and quartiles of that gain round by round.

    python benchmarks/engine_ab.py --baseline 25e06d8 [--sizes small,medium,large]
        [--rounds 10] [--steps 4]

With ``--without NAME,...`` (or ``all``) the baselines are this tree's engine with the patch
``benchmarks/ablations/NAME.patch`` applied: the same maths without one optimisation (the test
suite holds every patched engine to the reference engine in float64). All of them and the
current engine take turns in one run, so the gains of one run are comparable: the
gain of a row is what that optimisation saves. A control row, the unchanged engine built as
the ablated ones are, shows the measurement's own bias and noise.

    python benchmarks/engine_ab.py --without all --rounds 4 --steps 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from ptb_lstm.bench import PTB_VOCAB, StepTimer
from ptb_lstm.config import PRESETS
from ptb_lstm.params import init_params

ROOT = Path(__file__).resolve().parents[1]
ENGINES = "src/ptb_lstm/engines"
ABLATIONS = Path(__file__).resolve().parent / "ablations"
# Seconds between one engine's turn and the next: OpenBLAS's threads spin about 0.1 s.
_REST = 0.3


def ablations() -> list[str]:
    """The names of the patches in benchmarks/ablations/, sorted."""
    return sorted(path.stem for path in ABLATIONS.glob("*.patch"))


def ablated_source(name: str) -> str:
    """This tree's numpy_engine.py with ``benchmarks/ablations/NAME.patch`` applied."""
    engine = f"{ENGINES}/numpy_engine.py"
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / engine
        target.parent.mkdir(parents=True)
        target.write_bytes((ROOT / engine).read_bytes())
        result = subprocess.run(
            ["git", "apply", str(ABLATIONS / f"{name}.patch")],
            cwd=folder,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ValueError(
                f"--without {name}: its patch no longer applies to {engine}; "
                f"remake it ({result.stderr.strip().splitlines()[0]})"
            )
        return target.read_text(encoding="utf-8")


def ablated_engine_class(name: str) -> type:
    return _load(f"ptb_lstm_without_{name.replace('-', '_')}", ablated_source(name)).NumpyEngine


def _git_show(revision: str, path: str) -> str | None:
    result = subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=ROOT, capture_output=True, text=True
    )
    return result.stdout if result.returncode == 0 else None


def baseline_engine_class(revision: str) -> type:
    """The NumpyEngine class of ``revision``, with the private modules of engines/ it imports
    that this tree lacks (such as one removed since) loaded from ``revision`` too."""
    source = _git_show(revision, f"{ENGINES}/numpy_engine.py")
    if source is None:
        raise ValueError(f"--baseline: git has no {ENGINES}/numpy_engine.py at {revision!r}")
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{revision}:{ENGINES}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listing:
        module = f"ptb_lstm.engines.{name.removesuffix('.py')}"
        if name.startswith("_") and name.endswith(".py") and module in source:
            if not (ROOT / ENGINES / name).exists():
                _load(module, _git_show(revision, f"{ENGINES}/{name}") or "")
    return _load(f"ptb_lstm_baseline_{revision}", source).NumpyEngine


def _load(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def compare(
    size: str, baselines: dict[str, type], rounds: int, steps: int
) -> dict[str, dict[str, float | list[float]]]:
    """Median ms per training and evaluation step of the current engine and each baseline,
    and for each baseline its per-round gains in training ("rounds"): its median step of a
    round over the current engine's in the same round, less 1. Each engine lives in a
    process of its own, so that none runs in memory another has fragmented; the engines
    take turns in one order and then the reverse, so that none always runs first."""
    context = multiprocessing.get_context("fork")  # the engines built from git come along
    workers = {}
    current = _load("ptb_lstm_current", (ROOT / ENGINES / "numpy_engine.py").read_text())
    for name, engine_class in [("current", current.NumpyEngine), *baselines.items()]:
        here, there = context.Pipe()
        process = context.Process(target=_worker, args=(there, size, engine_class), daemon=True)
        process.start()
        workers[name] = (process, here)
    for _, connection in workers.values():
        connection.recv()  # built

    def run(name: str, kind: str, count: int) -> list[float]:
        # BLAS's threads spin on a core for a while after their last product; the engine
        # that ran before sleeps first, so that its threads have stopped.
        time.sleep(_REST)
        connection = workers[name][1]
        connection.send((kind, count))
        return connection.recv()

    for name in workers:  # warm-up: buffers, BLAS threads, caches
        run(name, "train", 1)
        run(name, "eval", 1)
    times = {name: {"train": [], "eval": []} for name in workers}
    order = list(workers)
    round_gains: dict[str, list[float]] = {name: [] for name in baselines}
    for _ in range(rounds):
        round_train = {}
        for name in order:
            round_train[name] = statistics.median(run(name, "train", steps))
            times[name]["train"].append(round_train[name])
            times[name]["eval"] += run(name, "eval", steps)
        for name in baselines:
            round_gains[name].append(round_train[name] / round_train["current"] - 1)
        order.reverse()
    for process, connection in workers.values():
        connection.send(None)
        process.join()
    result: dict[str, dict[str, float | list[float]]] = {
        name: {kind: 1000 * statistics.median(values) for kind, values in kinds.items()}
        for name, kinds in times.items()
    }
    for name, gains in round_gains.items():
        result[name]["rounds"] = gains
    return result


def _worker(connection, size: str, engine_class: type) -> None:
    """One engine in a process of its own, every one built alike: builds it, then times the
    steps it is asked for until told to stop."""
    config = PRESETS[size]
    timer = StepTimer("numpy", config, device="cpu")
    timer.engine = engine_class(config, init_params(config, PTB_VOCAB, np.float32))
    connection.send("built")
    while (request := connection.recv()) is not None:
        kind, count = request
        connection.send(timer.train(count) if kind == "train" else timer.eval(count))


def spread(gains: list[float]) -> str:
    """The median of per-round gains and their quartiles, as "+4.1% (+1.0% .. +6.3%)"."""
    if len(gains) < 2:
        return f"{gains[0]:+.1%}"
    low, middle, high = statistics.quantiles(gains, n=4)
    return f"{statistics.median(gains):+.1%} ({low:+.1%} .. {high:+.1%})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    against = parser.add_mutually_exclusive_group(required=True)
    against.add_argument("--baseline", help="a git commit or branch")
    against.add_argument(
        "--without",
        metavar="NAME,...",
        help=f"this engine without these optimisations, or all ({', '.join(ablations())})",
    )
    parser.add_argument("--sizes", default="small,medium,large", help="presets, comma-separated")
    parser.add_argument("--rounds", type=int, default=10, help="alternations (default: 10)")
    parser.add_argument("--steps", type=int, default=4, help="steps per engine per round")
    args = parser.parse_args(argv)
    sizes = args.sizes.split(",")
    for size in sizes:
        if size not in PRESETS:
            parser.error(f"--sizes: unknown preset {size!r}; choose from {', '.join(PRESETS)}")
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be at least 1")
    try:
        baselines = _baselines(args)
    except ValueError as error:
        parser.error(str(error))
    what = args.baseline or "itself without each optimisation named"
    print(f"NumPy engine: this tree against {what}, float32, interleaved; gain is the")
    print("baseline's time over the current one's, less 1 (above 0: the current one is faster)")
    print(f"{args.rounds} rounds of {args.steps} training and {args.steps} evaluation steps each;")
    print("gain per round: the median of the rounds' training gains, and their quartiles")
    print(
        "| size | baseline | current train ms | baseline train ms | gain | current eval ms "
        "| baseline eval ms | gain | gain per round |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        m = compare(size, baselines, args.rounds, args.steps)
        cur = m["current"]
        for name in baselines:
            base = m[name]
            print(
                f"| {size} | {name} | {cur['train']:.1f} | {base['train']:.1f} | "
                f"{base['train'] / cur['train'] - 1:+.1%} | {cur['eval']:.1f} | "
                f"{base['eval']:.1f} | {base['eval'] / cur['eval'] - 1:+.1%} | "
                f"{spread(base['rounds'])} |",
                flush=True,
            )
    return 0


def _baselines(args) -> dict[str, type]:
    if args.baseline:
        return {args.baseline: baseline_engine_class(args.baseline)}
    names = ablations() if args.without == "all" else args.without.split(",")
    for name in names:
        if name not in ablations():
            raise ValueError(
                f"--without: no benchmarks/ablations/{name}.patch; "
                f"choose from {', '.join(ablations())} or all"
            )
    # The control: this tree's engine again, loaded and built as the ablated ones are. Its
    # gain is the measurement's own bias and noise (the order, the memory each engine got).
    control = _load("ptb_lstm_control", (ROOT / ENGINES / "numpy_engine.py").read_text())
    return {
        "control (unchanged)": control.NumpyEngine,
        **{f"without {name}": ablated_engine_class(name) for name in names},
    }


if __name__ == "__main__":
    sys.exit(main())
