"""Every engine against the reference engine after a few float64 steps of each optimizer.

From the same seeded weights and the same PTB batches (the small config unless ``--config``
says otherwise, with beta1 0.8, beta2 0.95 and epsilon 1e-6, away from their defaults, and
learning rate 0.002 for Adam and AMSGrad, the config's for SGD; halved after the third step),
each engine trains ``--steps`` steps (default 6) of SGD, Adam and AMSGrad; the table gives, per
engine and optimizer, the largest difference of any parameter from the reference engine's
relative to how far that parameter moved (``ptb_lstm.agreement.compare_updates``), the
parameter where it is largest, and the largest relative difference of the optimizer's state.

    python benchmarks/studies/optimizer_agreement.py [--config small] [--steps 6] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import time

from ptb_lstm.agreement import compare_updates
from ptb_lstm.config import load_config
from ptb_lstm.data import load_corpus, locate_data_dir
from ptb_lstm.engines import installed_engines

LIMIT = 1e-9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    corpus = load_corpus(locate_data_dir(args.data_dir))
    base = load_config(args.config).replace(beta1=0.8, beta2=0.95, epsilon=1e-6)
    engines = [e for e in installed_engines() if e != "numpy-reference"]
    print(
        f"against numpy-reference, {args.steps} float64 steps of the {args.config} config "
        f"on PTB, beta1 {base.beta1}, beta2 {base.beta2}, epsilon {base.epsilon:g}; "
        "parameters relative to the update:"
    )
    print(f"{'engine':<10} {'optimizer':<9} {'lr':>6} {'params':>9} {'state':>9}  worst parameter")
    worst = 0.0
    started = time.perf_counter()
    for optimizer in ("sgd", "adam", "amsgrad"):
        config = base.replace(optimizer=optimizer)
        if optimizer != "sgd":
            config = config.replace(learning_rate=0.002)
        for row in compare_updates(engines, config, corpus, "float64", steps=args.steps):
            worst = max(worst, row.params, row.state)
            print(
                f"{row.engine:<10} {optimizer:<9} {config.learning_rate:>6g} "
                f"{row.params:>9.2e} {row.state:>9.2e}  {row.worst_param}",
                flush=True,
            )
    verdict = "PASSED" if worst <= LIMIT else "FAILED"
    print(
        f"largest {worst:.2e}, limit {LIMIT:.0e}: {verdict} ({time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
