"""The NumPy engine as it is against the NumPy engine of another commit, interleaved (A/B).

An optimisation of the engine stays only where it pays; this measures what it pays. The
baseline engine is read from git (``src/ptb_lstm/engines/numpy_engine.py`` at ``--baseline``,
with the private modules of engines/ that the tree no longer has) and both engines train and
evaluate on the same random PTB-shaped batches in one process, in alternating rounds
(A B A B ...), so that the noise of the machine falls on both alike. Prints, per size, the
median ms of a training and an evaluation step of each and how much faster the current one is.

    python benchmarks/engine_ab.py --baseline 25e06d8 [--sizes small,medium,large]
        [--rounds 10] [--steps 4]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

from ptb_lstm.bench import PTB_VOCAB, StepTimer
from ptb_lstm.config import PRESETS
from ptb_lstm.params import init_params

ROOT = Path(__file__).resolve().parents[1]
ENGINES = "src/ptb_lstm/engines"


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


def compare(size: str, baseline: type, rounds: int, steps: int) -> dict[str, dict[str, float]]:
    """Median ms per training and evaluation step of the current engine and the baseline."""
    config = PRESETS[size]
    timers = {"current": StepTimer("numpy", config, device="cpu")}
    timers["baseline"] = StepTimer("numpy", config, device="cpu")
    timers["baseline"].engine = baseline(config, init_params(config, PTB_VOCAB, np.float32))
    times = {name: {"train": [], "eval": []} for name in timers}
    for timer in timers.values():  # warm-up: buffers, BLAS threads, caches
        timer.train(1)
        timer.eval(1)
    for _ in range(rounds):
        for name, timer in timers.items():
            times[name]["train"] += timer.train(steps)
            times[name]["eval"] += timer.eval(steps)
    return {
        name: {kind: 1000 * statistics.median(values) for kind, values in kinds.items()}
        for name, kinds in times.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="a git commit or branch")
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
        baseline = baseline_engine_class(args.baseline)
    except ValueError as error:
        parser.error(str(error))
    print(f"NumPy engine: this tree against {args.baseline}, float32, interleaved; gain is the")
    print("baseline's time over the current one's, less 1 (above 0: the current one is faster)")
    print(f"{args.rounds} rounds of {args.steps} training and {args.steps} evaluation steps each")
    print(
        "| size | current train ms | baseline train ms | gain | current eval ms "
        "| baseline eval ms | gain |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        m = compare(size, baseline, args.rounds, args.steps)
        cur, base = m["current"], m["baseline"]
        print(
            f"| {size} | {cur['train']:.1f} | {base['train']:.1f} | "
            f"{base['train'] / cur['train'] - 1:+.1%} | {cur['eval']:.1f} | "
            f"{base['eval']:.1f} | {base['eval'] / cur['eval'] - 1:+.1%} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
