"""The NumPy engine's step with and without its helper threads, interleaved in one process.

Three ways to run the same engine code on the small config (float32, random PTB-shaped
batches), timed in alternating rounds so that the noise of a shared machine falls on all:

- threads: the default; BLAS at one thread per call, the step's tasks shared by the calling
  thread and one helper for each further BLAS thread (engines/_blas_threads.py);
- serial, BLAS on all threads: every task run at once, whole, by the calling thread, with
  BLAS splitting each product over its threads (the engine before the helper threads);
- serial, BLAS on one thread: what ``OPENBLAS_NUM_THREADS=1`` gives.

Prints the median ms per training and evaluation step of each, and the ratios. With
``--set`` the config changes (e.g. hidden_size=650); "threads" then means helper threads
even where the engine would not use them (hidden sizes above _THREADED_HIDDEN_MAX).

    python benchmarks/studies/threads_ab.py [--rounds 20] [--set hidden_size=650 ...]
"""

from __future__ import annotations

import argparse
import statistics

from threadpoolctl import threadpool_limits

from ptb_lstm.bench import StepTimer
from ptb_lstm.config import apply_overrides, load_config, parse_sets
from ptb_lstm.engines import _blas_threads, numpy_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="change the small config"
    )
    args = parser.parse_args()
    config = apply_overrides(load_config("small"), parse_sets(args.set))
    numpy_engine._THREADED_HIDDEN_MAX = float("inf")
    library = _blas_threads._numpy_blas()
    threads = library.num_threads if library is not None else 1
    print(f"BLAS: {library.info() if library else 'not controllable'}")
    timer = StepTimer("numpy", config)
    threaded_split = _blas_threads.BlasThreads.split

    def _serial(self, enabled=True):  # the engine's own serial step: every task at once
        return threaded_split(self, enabled=False)

    modes = {
        "threads": (threaded_split, threads),
        f"serial, BLAS on {threads} threads": (_serial, threads),
        "serial, BLAS on 1 thread": (_serial, 1),
    }
    train = {mode: [] for mode in modes}
    evaluate = {mode: [] for mode in modes}
    try:
        for _ in range(args.rounds):
            for mode, (split, blas) in modes.items():
                _blas_threads.BlasThreads.split = split
                with threadpool_limits(limits=blas, user_api="blas"):
                    timer.train(2)
                    train[mode] += timer.train(10)
                    timer.eval(1)
                    evaluate[mode] += timer.eval(5)
    finally:
        _blas_threads.BlasThreads.split = threaded_split
    base = statistics.median(train["threads"])
    changes = ", ".join(args.set) or "as it is"
    print(
        f"small config ({changes}), float32; median of {10 * args.rounds} training and "
        f"{5 * args.rounds} evaluation steps each, in {args.rounds} interleaved rounds"
    )
    print(f"{'mode':32s} {'train ms':>9s} {'x threads':>10s} {'eval ms':>8s}")
    for mode in modes:
        step = statistics.median(train[mode])
        print(
            f"{mode:32s} {1000 * step:9.2f} {step / base:10.3f} "
            f"{1000 * statistics.median(evaluate[mode]):8.2f}"
        )


if __name__ == "__main__":
    main()
