"""How fast do two engines' trajectories part, given identical maths?

Trains a config with the NumPy engine and one other from the same weights on the same PTB
batches, with the same dropout masks (``ptb_lstm.dropout``) where the config has dropout, and
prints, after chosen steps, both losses, the largest relative parameter difference and both
gradient norms:

    python benchmarks/studies/divergence.py                              # small, float64, tf-graph
    python benchmarks/studies/divergence.py --config large --dtype float32 --other torch --steps 10

(PTB from $PTB_DATA_DIR or ptb-lstm's own search). Output kept in docs/logs/divergence.txt and
docs/logs/divergence-large-float32.txt.
"""

from __future__ import annotations

import argparse

import numpy as np

from ptb_lstm.agreement import relative
from ptb_lstm.config import PRESETS
from ptb_lstm.data import batches, load_corpus, locate_data_dir
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines import create_engine
from ptb_lstm.params import init_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--other", default="tf-graph", help="the engine to compare with numpy")
    parser.add_argument("--config", default="small", choices=sorted(PRESETS))
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    args = parser.parse_args()
    config = PRESETS[args.config]
    corpus = load_corpus(locate_data_dir(download=False))
    params = init_params(config, corpus.vocab_size, np.float64)
    a = create_engine("numpy", config, params, args.dtype)
    b = create_engine(args.other, config, params, args.dtype)
    print(
        f"numpy vs {args.other}, {args.config} config, {args.dtype}, dropout {config.dropout:g}, "
        f"learning rate {config.learning_rate:g}, max_grad_norm {config.max_grad_norm:g}"
    )
    print(
        f"{'step':>5} {'loss numpy':>14} {'loss other':>14} {'max rel param diff':>19} "
        f"{'grad norm':>10} {'norm other':>10}"
    )
    report = {1, 2, 3, 4, 5, *range(10, args.steps + 1, 10)}
    shape = (config.batch_size, config.num_steps)
    for step, (x, y) in enumerate(batches(corpus.train, *shape), start=1):
        masks = step_masks(config, step - 1, dtype=np.dtype(args.dtype))
        lr = config.learning_rate
        loss_a, loss_b = a.train_step(x, y, lr, masks), b.train_step(x, y, lr, masks)
        if step in report or args.steps <= 10:
            pa, pb = a.get_params(), b.get_params()
            diff = max(relative(pa[k], pb[k]) for k in pa)
            print(
                f"{step:>5} {loss_a:>14.9f} {loss_b:>14.9f} {diff:>19.2e} "
                f"{a.last_grad_norm:>10.4f} {b.last_grad_norm:>10.4f}",
                flush=True,
            )
        if step == args.steps:
            break


if __name__ == "__main__":
    main()
