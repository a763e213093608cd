"""Whole training runs of the tiny config with every engine, float64 and float32, compared.

Three epochs of the training loop (learning-rate decay after the first, state reset at each
epoch, valid after each, test at the end) on a generated corpus, from the same weights. Prints
each engine's largest relative difference from the NumPy engine in the epoch perplexities and
the final parameters (docs/agreement.md).

    python benchmarks/studies/whole_run_agreement.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ptb_lstm.agreement import relative
from ptb_lstm.config import PRESETS, apply_overrides
from ptb_lstm.data import load_corpus
from ptb_lstm.engines import create_engine
from ptb_lstm.params import init_params
from ptb_lstm.train import train


def write_corpus(folder: Path, seed: int, lines: tuple[int, int, int]) -> Path:
    """A tiny PTB-shaped corpus of 12 words and <unk> (each sentence counts up through the words
    from a random start); train starts with every word once, so valid and test meet no unknown
    word. The same corpus as the tests' generated one for the same seed."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(12)] + ["<unk>"]
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in zip(("train", "valid", "test"), lines, strict=True):
        rows = []
        for n in range(count):
            length = int(rng.integers(3, 9))
            if split == "train" and n == 0:
                rows.append(" ".join(vocab))
                continue
            start = int(rng.integers(0, len(vocab)))
            rows.append(" ".join(vocab[(start + k) % len(vocab)] for k in range(length)))
        (folder / f"ptb.{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = load_corpus(write_corpus(tmp / "data", seed=3, lines=(400, 40, 40)))
        config = apply_overrides(PRESETS["tiny"], {"epochs": 3, "epochs_at_full_lr": 1})
        params = init_params(config, corpus.vocab_size, seed=2)
        for dtype in ("float64", "float32"):
            runs = {}
            for name in ("numpy", "tf-eager", "tf-graph"):
                engine = create_engine(name, config, params, dtype=dtype)
                result = train(config, corpus, engine, tmp / f"{name}-{dtype}", log_every=10_000)
                runs[name] = (result, engine.get_params())
            ref, ref_params = runs["numpy"]
            print(
                f"{dtype}: {ref.steps} steps, 3 epochs; numpy valid perplexities "
                + ", ".join(f"{e['valid_perplexity']:.6f}" for e in ref.epochs)
            )
            for name in ("tf-eager", "tf-graph"):
                result, final = runs[name]
                ppl = max(
                    abs(a[k] / b[k] - 1)
                    for a, b in zip(result.epochs, ref.epochs, strict=True)
                    for k in ("train_perplexity", "valid_perplexity")
                )
                ppl = max(ppl, abs(result.test.perplexity / ref.test.perplexity - 1))
                par = max(relative(final[k], v) for k, v in ref_params.items())
                print(f"  {name:9s} perplexities {ppl:.1e}, parameters {par:.1e}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
