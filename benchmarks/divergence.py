"""How fast do two engines' trajectories part, given identical maths?

Trains the small model with the NumPy and the TensorFlow graph engine in float64 from the same
weights on the same PTB batches and prints, after chosen steps, both losses and the largest
relative parameter difference. Run: python benchmarks/divergence.py [--steps 150]
(PTB from $PTB_DATA_DIR). Output kept in docs/logs/divergence.txt.
"""

from __future__ import annotations

import argparse

import numpy as np

from ptb_lstm.agreement import relative
from ptb_lstm.config import PRESETS
from ptb_lstm.data import batches, load_corpus, locate_data_dir
from ptb_lstm.engines import create_engine
from ptb_lstm.params import init_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--other", default="tf-graph")
    args = parser.parse_args()
    config = PRESETS["small"]
    corpus = load_corpus(locate_data_dir(download=False))
    params = init_params(config, corpus.vocab_size, np.float64)
    a = create_engine("numpy", config, params, "float64")
    b = create_engine(args.other, config, params, "float64")
    print(f"numpy vs {args.other}, small config, float64, learning rate 1")
    print(f"{'step':>5} {'loss numpy':>14} {'loss other':>14} {'max rel param diff':>19} "
          f"{'grad norm':>10}")
    report = {1, 2, 3, 4, 5, *range(10, args.steps + 1, 10)}
    for step, (x, y) in enumerate(batches(corpus.train, 20, 20), start=1):
        loss_a, loss_b = a.train_step(x, y, 1.0), b.train_step(x, y, 1.0)
        if step in report:
            pa, pb = a.get_params(), b.get_params()
            diff = max(relative(pa[k], pb[k]) for k in pa)
            print(f"{step:>5} {loss_a:>14.9f} {loss_b:>14.9f} {diff:>19.2e} "
                  f"{a.last_grad_norm:>10.2f}", flush=True)
        if step == args.steps:
            break


if __name__ == "__main__":
    main()
