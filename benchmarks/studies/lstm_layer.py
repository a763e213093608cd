"""One LSTM layer, forward and backward: the NumPy engine against torch's ``nn.LSTM``.

At the medium and large sizes most of a training step is the two LSTM layers: the input
projection, 35 time steps of a [20, H] x [H, 4H] product and the gate arithmetic, the same
backward, and the weight and input gradients. The NumPy engine runs each time step as a few
NumPy calls and one product on NumPy's BLAS. On the CPU, torch's ``nn.LSTM`` in float32 runs
the whole layer as oneDNN's fused RNN primitive (``aten::mkldnn_rnn_layer``), forward and
backward. This study times one layer of each size three ways:

- ``numpy``: the NumPy engine's own code for a one-layer model (its forward over the
  embedding rows, then back-propagation through time with the weight and input gradients),
  no softmax;
- ``torch``: ``nn.LSTM(H, H)`` forward and backward, as the torch engine runs it (oneDNN);
- ``torch-aten``: the same with oneDNN switched off (``torch.backends.mkldnn.enabled``), so
  that torch runs its own loop over time steps on its BLAS;
- ``products``: the layer's matrix products alone on NumPy's BLAS, each timed at its shape as
  ``make bench`` times the shape floor (``ptb_lstm.bench.product_seconds``): the least the
  NumPy engine's layer could take with no elementwise work at all.

Each variant runs in a process of its own (two BLAS thread pools in one process slow each
other), with the machine's threads; the variants take turns, in one order and then the
reverse, and each cell is the median over rounds of the median of a round's calls:

    python benchmarks/studies/lstm_layer.py          # log: docs/logs/lstm-layer.txt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from ptb_lstm.config import PRESETS

VARIANTS = ("numpy", "torch", "torch-aten", "products")
VOCAB = 10_000


def layer_config(size: str):
    return dataclasses.replace(PRESETS[size], num_layers=1, dropout=0.0)


def numpy_layer(size: str):
    """A call that runs one layer forward and backward with the NumPy engine's code."""
    from ptb_lstm.engines import create_engine
    from ptb_lstm.params import init_params

    config = layer_config(size)
    engine = create_engine("numpy", config, init_params(config, VOCAB, np.float32))
    rng = np.random.default_rng(0)
    shape = (config.batch_size, config.num_steps)
    inputs = rng.integers(0, VOCAB, shape)
    dtop = rng.standard_normal((config.num_steps, config.batch_size, config.hidden_size))
    dtop = dtop.astype(np.float32)
    state = engine._state_for(config.batch_size)

    def run() -> None:
        cache, _ = engine._forward(inputs, state, None)
        engine._lstm_gradients(cache, dtop, {}, engine._gradient_buffer)

    return run


def torch_layer(size: str, onednn: bool):
    """A call that runs ``nn.LSTM`` forward and backward, with oneDNN or without."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    torch.backends.mkldnn.enabled = onednn
    config = layer_config(size)
    h = config.hidden_size
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(h, h)
    x = torch.randn(config.num_steps, config.batch_size, h, requires_grad=True)
    dtop = torch.randn(config.num_steps, config.batch_size, h)

    def run() -> None:
        lstm.zero_grad(set_to_none=False)
        x.grad = None
        out, _ = lstm(x)
        out.backward(dtop)

    return run


def products_ms(size: str) -> float:
    """The shape floor of one layer: its products at their shapes, fastest of a few calls."""
    from ptb_lstm.bench import product_seconds, step_products

    layer = [p for p in step_products(layer_config(size)) if p.what.startswith("layer 0")]
    return 1000 * sum(product_seconds(p) for p in layer)


def time_variant(variant: str, size: str, calls: int) -> float:
    """Median ms of ``calls`` calls of one variant, after two untimed ones (or, for
    ``products``, the layer's shape floor)."""
    if variant == "products":
        return products_ms(size)
    run = numpy_layer(size) if variant == "numpy" else torch_layer(size, variant == "torch")
    run()
    run()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def in_own_process(variant: str, size: str, calls: int) -> float:
    command = [sys.executable, __file__, "--child", variant, "--sizes", size]
    command += ["--calls", str(calls)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])["ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=0, help="calls a round (default by size)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    if args.child:
        print(json.dumps({"ms": time_variant(args.child, sizes[0], args.calls)}))
        return
    import numpy
    import torch

    print(f"NumPy {numpy.__version__}, PyTorch {torch.__version__}, {os.cpu_count()} cores")
    print("one LSTM layer forward and backward, ms (median of rounds; each round's in brackets)")
    print(f"{'size':8s} {'H':>5s} " + " ".join(f"{v:>12s}" for v in VARIANTS) + "   rounds")
    default_calls = {"small": 20, "medium": 6, "large": 3}
    for size in sizes:
        calls = args.calls or default_calls.get(size, 3)
        rounds: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for r in range(args.rounds):
            for variant in VARIANTS if r % 2 == 0 else reversed(VARIANTS):
                rounds[variant].append(in_own_process(variant, size, calls))
        medians = {v: statistics.median(times) for v, times in rounds.items()}
        config = layer_config(size)
        cells = " ".join(f"{medians[v]:12.1f}" for v in VARIANTS)
        detail = "; ".join(f"{v}: " + ", ".join(f"{t:.1f}" for t in rounds[v]) for v in VARIANTS)
        print(f"{size:8s} {config.hidden_size:5d} {cells}   [{detail}]")
        ratio = medians["torch"] / medians["numpy"]
        aten = medians["torch-aten"] / medians["torch"]
        floor = medians["products"] / medians["torch"]
        print(
            f"{'':14s} torch / numpy {ratio:.2f}; torch without oneDNN / with {aten:.2f}; "
            f"NumPy's products alone / torch's whole layer {floor:.2f}"
        )


if __name__ == "__main__":
    main()
