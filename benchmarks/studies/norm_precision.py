"""How accurate is the global gradient norm in float32, summed three ways?

For the first PTB batch of the medium and the large config (float32, the step-0 dropout masks),
the NumPy engine's gradients, and the norm of all of them (the embedding's as its distinct
rows) computed: exactly (every square in float64), with a float32 dot product per array
(``np.vdot``, which accumulates in float32), with NumPy's pairwise ``sum`` of ``g * g`` per
array, and by the engine's ``global_norm``. Prints each one's relative error and time:

    python benchmarks/studies/norm_precision.py

Output kept in docs/logs/norm-precision.txt.
"""

from __future__ import annotations

import time

import numpy as np

from ptb_lstm.config import PRESETS
from ptb_lstm.data import batches, load_corpus, locate_data_dir
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines import create_engine
from ptb_lstm.params import init_params


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, 1000 * (time.perf_counter() - started)


def main() -> None:
    corpus = load_corpus(locate_data_dir(download=False))
    for name in ("medium", "large"):
        config = PRESETS[name]
        engine = create_engine("numpy", config, init_params(config, corpus.vocab_size), "float32")
        inputs, targets = next(batches(corpus.train, config.batch_size, config.num_steps))
        engine.reset_state(config.batch_size)
        grads = engine.gradients(inputs, targets, engine.get_state(), step_masks(config, 0))
        arrays = [*grads.dense.values(), grads.embedding_grad]
        exact = float(np.sqrt(sum(np.sum(a.astype(np.float64) ** 2) for a in arrays)))
        ways = {
            "float32 np.vdot per array": lambda arrays=arrays: float(
                np.sqrt(sum(float(np.vdot(a, a)) for a in arrays))
            ),
            "np.sum(g * g) per array": lambda arrays=arrays: float(
                np.sqrt(sum(float(np.sum(a * a)) for a in arrays))
            ),
            "the engine's global_norm": grads.global_norm,
        }
        print(
            f"{name} config: {sum(a.size for a in arrays):,} gradient entries, "
            f"exact norm {exact:.9f}"
        )
        for label, fn in ways.items():
            value, ms = timed(fn)
            print(
                f"  {label:<27} {value:.9f}  relative error {abs(value - exact) / exact:.1e}  "
                f"{ms:6.1f} ms"
            )


if __name__ == "__main__":
    main()
