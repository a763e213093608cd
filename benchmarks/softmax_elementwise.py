"""The softmax's elementwise work on one core and on two (docs/performance.md, change 6).

Times, interleaved in one process on the small config's shapes ([400, 10,000] float32 logits):
the pass sequence the engine used before (row maximum, subtract, exp, sum, scale) on one thread,
the engine's current rows on one thread (no maximum pass), and the engine's current function
with the rows split over two threads. Each repetition first restores the logits (a copy, timed
on its own and subtracted).

    python benchmarks/softmax_elementwise.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ptb_lstm.engines.numpy_engine import _softmax_nll_in_place, _softmax_rows


def with_max_pass(logits, targets, grad_scale):
    """The earlier engine's passes: maximum, subtract, exp, sum, scale, one thread."""
    rows = np.arange(logits.shape[0])
    row_max = logits.max(axis=1)
    target_logit = logits[rows, targets].astype(np.float64)
    logits -= row_max[:, None]
    np.exp(logits, out=logits)
    sums = logits.sum(axis=1)
    nll = np.log(sums.astype(np.float64)) + row_max - target_logit
    logits *= (grad_scale / sums)[:, None].astype(logits.dtype)
    logits[rows, targets] -= logits.dtype.type(grad_scale)
    return float(nll.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    top = np.concatenate([rng.standard_normal((400, 200)), np.ones((400, 1))], 1)
    top = top.astype(np.float32)
    weights = (rng.standard_normal((201, 10_000)) * 0.3).astype(np.float32)
    logits = top @ weights
    targets = rng.integers(0, 10_000, 400)
    buffer = np.empty_like(logits)

    def restore():
        buffer[:] = logits

    def env(threads):
        os.environ["PTB_LSTM_NUM_THREADS"] = threads

    cases = {
        "copy (subtracted)": lambda: restore(),
        "max pass, 1 thread": lambda: (restore(), with_max_pass(buffer, targets, 0.05)),
        "no max pass, 1 thread": lambda: (restore(), _softmax_rows(buffer, targets, 0.05, top,
                                                                   weights)),
        "no max pass, 2 threads": lambda: (restore(), env("2"), _softmax_nll_in_place(
            buffer, targets, 0.05, top, weights)),
    }
    times = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, case in cases.items():
            started = time.perf_counter()
            case()
            times[name].append(time.perf_counter() - started)
    median = {name: 1e3 * sorted(t)[len(t) // 2] for name, t in times.items()}
    copy = median.pop("copy (subtracted)")
    print(f"[400, 10000] float32 logits, median of {args.repeats} interleaved repetitions, "
          f"copy {copy:.2f} ms subtracted, {len(os.sched_getaffinity(0))} cores:")
    for name, value in median.items():
        print(f"  {name:24s} {value - copy:6.2f} ms")
    a, b = buffer.copy(), buffer.copy()
    a[:], b[:] = logits, logits
    nll_a, nll_b = with_max_pass(a, targets, 0.05), _softmax_nll_in_place(b, targets, 0.05, top,
                                                                          weights)
    print(f"NLL {nll_a:.6f} vs {nll_b:.6f}; largest gradient difference {np.abs(a - b).max():.2e}")


if __name__ == "__main__":
    main()
