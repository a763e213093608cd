"""Which thread does what, when, inside one NumPy training step (docs/performance.md).

Times every task of the engine's helper-thread queue (engines/_blas_threads.py) and the
calling thread's recurrences and back-propagation through time, for a few training steps of
the small config after a warm-up, and prints each step as a timeline: thread, piece of
work, start and end in ms from the step's start. "main" is the calling thread.

    python benchmarks/studies/step_timeline.py [--steps 2]
"""

from __future__ import annotations

import argparse
import functools
import threading
import time

from ptb_lstm.bench import StepTimer
from ptb_lstm.config import load_config
from ptb_lstm.engines import _blas_threads
from ptb_lstm.engines.numpy_engine import NumpyEngine

EVENTS: list[tuple[str, str, float, float]] = []


def _record(name: str, started: float) -> None:
    thread = threading.current_thread()
    who = "main" if thread is threading.main_thread() else thread.name.rsplit("_", 1)[-1]
    EVENTS.append((who, name, started, time.perf_counter()))


def _timed_task_init(init):
    @functools.wraps(init)
    def timed_init(task, function):
        inner = getattr(function, "func", function)
        name = getattr(inner, "__name__", "task")
        if name == "matmul":  # name the product by its output's shape
            name = "matmul " + "x".join(map(str, function.keywords["out"].shape))

        def timed():
            started = time.perf_counter()
            function()
            _record(name, started)

        init(task, timed)

    return timed_init


def _timed_method(method):
    @functools.wraps(method)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        result = method(*args, **kwargs)
        _record(method.__name__, started)
        return result

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    _blas_threads.Task.__init__ = _timed_task_init(_blas_threads.Task.__init__)
    for name in ("_recur", "_backward_through_time", "_sgd"):
        setattr(NumpyEngine, name, _timed_method(getattr(NumpyEngine, name)))
    timer = StepTimer("numpy", load_config("small"))
    timer.train(10)
    for _ in range(args.steps):
        EVENTS.clear()
        started = time.perf_counter()
        timer.train(1)
        total = 1000 * (time.perf_counter() - started)
        print(f"training step: {total:.2f} ms (thread, work, start, end, duration in ms)")
        for who, name, begin, end in sorted(EVENTS, key=lambda event: event[2]):
            begin, end = 1000 * (begin - started), 1000 * (end - started)
            print(f"  {who:5s} {name:24s} {begin:7.2f} {end:7.2f}  ({end - begin:.2f})")


if __name__ == "__main__":
    main()
