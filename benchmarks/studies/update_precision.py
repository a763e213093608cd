"""How exactly each engine's float32 training step matches float64 arithmetic, at given weights.

From a checkpoint's weights (e.g. a model in the middle of training, where gates saturate), take
three consecutive PTB training batches from a zero state and run one SGD step (learning rate 1,
clipping included) on each, resetting the weights before the next but carrying the state. The
NumPy engine in float64 is the reference; for each engine in float32 print the relative error
of the loss, the gradient norm, and the largest relative error of the parameter update.

    python benchmarks/studies/update_precision.py CHECKPOINT [--data-dir DIR]
"""

from __future__ import annotations

import argparse

import numpy as np

from ptb_lstm import checkpoint
from ptb_lstm.data import batches, load_corpus, locate_data_dir
from ptb_lstm.engines import create_engine


def updates(name, dtype, ckpt, chosen):
    engine = create_engine(name, ckpt.config, ckpt.params, dtype=dtype)
    engine.reset_state(ckpt.config.batch_size)
    out = []
    for inputs, targets in chosen:
        before = engine.get_params()
        loss = engine.train_step(inputs, targets, 1.0)
        after = engine.get_params()
        out.append(
            (
                loss,
                engine.last_grad_norm,
                {k: after[k].astype(np.float64) - before[k].astype(np.float64) for k in before},
            )
        )
        engine.set_params(before)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    ckpt = checkpoint.load(args.checkpoint)
    corpus = load_corpus(locate_data_dir(args.data_dir), vocab=ckpt.vocab)
    stream = batches(corpus.train, ckpt.config.batch_size, ckpt.config.num_steps)
    chosen = [next(stream) for _ in range(3)]
    print(
        f"weights of {args.checkpoint} (written by {ckpt.engine}, epoch "
        f"{ckpt.progress.get('epoch')}, step {ckpt.progress.get('step')})"
    )
    truth = updates("numpy", "float64", ckpt, chosen)
    for name in ("numpy", "tf-graph", "tf-eager"):
        for i, ((loss, norm, update), (loss64, norm64, update64)) in enumerate(
            zip(updates(name, "float32", ckpt, chosen), truth, strict=True)
        ):
            errors = {
                k: np.abs(update[k] - update64[k]).max() / np.abs(update64[k]).max()
                for k in update64
            }
            worst = max(errors, key=errors.get)
            print(
                f"{name:9s} float32, batch {i}: loss {abs(loss / loss64 - 1):.1e}, "
                f"gradient norm {abs(norm / norm64 - 1):.1e}, update {errors[worst]:.1e} "
                f"({worst})"
            )


if __name__ == "__main__":
    main()
