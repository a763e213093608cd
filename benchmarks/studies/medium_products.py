"""Where the medium config's training step stands against the SGEMM floor, product by product.

A training step of the medium model (2 layers of 650 units, batch 20 x 35 steps, vocabulary
10,000) is matrix products plus elementwise work. This script times each kind of product at
its real shape and memory layout (as the engine lays its operands out) with BLAS's own
threads, the same products' FLOP rate against a large square
SGEMM on the same machine (the floor's rate), and a whole NumPy-engine training step, so that
the gap between the step and the floor can be assigned to the products that cause it:

    python benchmarks/studies/medium_products.py            # log: docs/logs/medium-products.txt
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ptb_lstm.config import PRESETS
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines import create_engine
from ptb_lstm.params import init_params

VOCAB = 10_000


def median_ms(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    config = PRESETS["medium"]
    t, b, h, v = config.num_steps, config.batch_size, config.hidden_size, VOCAB
    n = t * b
    rng = np.random.default_rng(0)

    def array(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    square = array(2048, 2048)
    floor_rate = 2 * 2048**3 / median_ms(lambda: square @ square, 5) / 1e6  # GFLOP/s
    x, kernel, gates = array(n, h), array(h, 4 * h), array(n, 4 * h)
    state, recurrent = array(b, h), array(h, 4 * h)
    recurrent_t = np.ascontiguousarray(recurrent.T)  # the engine's BPTT copies it so, once
    dgate_step = array(b, 4 * h)
    softmax, dlogits = array(h, v), array(n, v)
    layers = config.num_layers
    # name, one product, how many of it a step runs, FLOPs of one
    kinds = [
        ("input projection x @ kernel", lambda: x @ kernel, layers, 2 * n * h * 4 * h),
        (
            "recurrent h @ recurrent_kernel (per time step)",
            lambda: state @ recurrent,
            layers * t,
            2 * b * h * 4 * h,
        ),
        ("softmax logits top @ softmax_kernel", lambda: x @ softmax, 1, 2 * n * h * v),
        (
            "softmax input gradient dlogits @ softmax_kernel.T",
            lambda: dlogits @ softmax.T,
            1,
            2 * n * h * v,
        ),
        ("softmax weight gradient top.T @ dlogits", lambda: x.T @ dlogits, 1, 2 * n * h * v),
        (
            "BPTT dgates @ recurrent_kernel.T (per time step)",
            lambda: dgate_step @ recurrent_t,
            layers * t,
            2 * b * 4 * h * h,
        ),
        ("input gradient dgates @ kernel.T", lambda: gates @ kernel.T, layers, 2 * n * 4 * h * h),
        ("kernel gradient x.T @ dgates", lambda: x.T @ gates, layers, 2 * n * h * 4 * h),
        ("recurrent kernel gradient h.T @ dgates", lambda: x.T @ gates, layers, 2 * n * h * 4 * h),
    ]
    engine = create_engine("numpy", config, init_params(config, v))
    inputs, targets = rng.integers(0, v, (b, t)), rng.integers(0, v, (b, t))
    counter = iter(range(10**6))

    def step():
        engine.train_step(inputs, targets, 0.1, step_masks(config, next(counter)))

    step_ms = median_ms(step, 10)
    masks_ms = median_ms(lambda: step_masks(config, 0), 10)
    print(
        f"medium config, float32; floor rate (2048^3 SGEMM): {floor_rate:.0f} GFLOP/s; "
        f"measured {time.strftime('%Y-%m-%d')}"
    )
    print(
        f"{'product':<52} {'count':>5} {'ms each':>8} {'ms/step':>8} {'GFLOP/s':>8} {'floor ms':>8}"
    )
    total_ms = total_flops = 0.0
    for name, product, count, flops in kinds:
        each = median_ms(product, 20 if count > 2 else 5)
        total_ms += each * count
        total_flops += flops * count
        print(
            f"{name:<52} {count:>5} {each:>8.3f} {each * count:>8.1f} "
            f"{flops / each / 1e6:>8.0f} {flops * count / floor_rate / 1e6:>8.1f}"
        )
    floor_ms = total_flops / floor_rate / 1e6
    print(
        f"{'all products':<52} {'':>5} {'':>8} {total_ms:>8.1f} "
        f"{total_flops / total_ms / 1e6:>8.0f} {floor_ms:>8.1f}"
    )
    print(
        f"whole training step (NumPy engine, masks included): {step_ms:.1f} ms = "
        f"{step_ms / floor_ms:.2f} x the floor ({total_flops / 1e9:.1f} GFLOP); drawing the "
        f"step's dropout masks: {masks_ms:.1f} ms; elementwise work and the rest: "
        f"{step_ms - total_ms:.1f} ms"
    )


if __name__ == "__main__":
    main()
