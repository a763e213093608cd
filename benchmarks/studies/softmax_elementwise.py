"""The softmax's elementwise work: the maximum pass, and two threads (docs/performance.md).

On the small config's shapes ([400, 10,000] float32 logits), interleaved in one process:

- the passes the engine used before (row maximum, subtract, exp, sum, scale), one thread;
- the engine's current function (no maximum pass), one thread;
- the same with the rows split between the calling thread and a helper thread (NumPy releases
  the GIL in these loops): the experiment that was tried and dropped.

Each is timed twice: after restoring the logits with a copy (the copy's own time subtracted),
and right after the logits product itself, as inside a training step, where OpenBLAS's worker
threads are still spinning on the second core when the elementwise work starts.

    python benchmarks/studies/softmax_elementwise.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ptb_lstm.engines.numpy_engine import _softmax_nll_in_place

POOL = ThreadPoolExecutor(1)


def with_max_pass(logits, targets, grad_scale, top=None, weights=None):
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


def two_threads(logits, targets, grad_scale, top, weights):
    half = logits.shape[0] // 2
    helper = POOL.submit(
        _softmax_nll_in_place, logits[half:], targets[half:], grad_scale, top[half:], weights
    )
    return (
        _softmax_nll_in_place(logits[:half], targets[:half], grad_scale, top[:half], weights)
        + helper.result()
    )


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
    functions = {
        "max pass, 1 thread": with_max_pass,
        "no max pass, 1 thread (engine)": _softmax_nll_in_place,
        "no max pass, 2 threads": two_threads,
    }
    copy_times, after_copy, product_times, after_product = [], {}, [], {}
    for _ in range(args.repeats):
        started = time.perf_counter()
        buffer[:] = logits
        copy_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        np.matmul(top, weights, out=buffer)
        product_times.append(time.perf_counter() - started)
        for name, function in functions.items():
            buffer[:] = logits
            started = time.perf_counter()
            function(buffer, targets, 0.05, top, weights)
            after_copy.setdefault(name, []).append(time.perf_counter() - started)
            started = time.perf_counter()
            np.matmul(top, weights, out=buffer)
            function(buffer, targets, 0.05, top, weights)
            after_product.setdefault(name, []).append(time.perf_counter() - started)

    def median(values):
        return 1e3 * sorted(values)[len(values) // 2]

    product = median(product_times)
    print(
        f"[400, 10000] float32 logits, median of {args.repeats} interleaved repetitions, "
        f"{len(os.sched_getaffinity(0))} cores; the product alone {product:.2f} ms"
    )
    print(f"  {'':32s} {'after a copy':>13s} {'after the product':>18s}")
    for name in functions:
        print(
            f"  {name:32s} {median(after_copy[name]):10.2f} ms "
            f"{median(after_product[name]) - product:15.2f} ms"
        )
    a, b = logits.copy(), logits.copy()
    nll_a = with_max_pass(a, targets, 0.05)
    nll_b = _softmax_nll_in_place(b, targets, 0.05, top, weights)
    print(f"NLL {nll_a:.6f} vs {nll_b:.6f}; largest gradient difference {np.abs(a - b).max():.2e}")


if __name__ == "__main__":
    main()
