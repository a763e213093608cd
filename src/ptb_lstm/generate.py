"""Sample text word by word from a trained model, carrying the LSTM state."""

from __future__ import annotations

import numpy as np

from ptb_lstm.data import EOS
from ptb_lstm.engines import Engine


def generate(engine: Engine, vocab: list[str], prompt_ids: list[int], words: int,
             temperature: float = 1.0, top_k: int = 0, seed: int = 0) -> list[str]:
    """``words`` sampled words after ``prompt_ids`` (read after an <eos>, as a new sentence).

    The next word is drawn from softmax(logits / temperature), restricted to the ``top_k``
    most likely words when top_k > 0. The same seed gives the same words."""
    rng = np.random.default_rng(seed)
    eos = vocab.index(EOS)
    engine.reset_state(1)
    logits = engine.logits(np.array([[eos, *prompt_ids]]))[0, -1]
    sampled = []
    for _ in range(words):
        scores = logits.astype(np.float64) / temperature
        if 0 < top_k < len(scores):
            cutoff = np.partition(scores, -top_k)[-top_k]
            scores = np.where(scores >= cutoff, scores, -np.inf)
        scores -= scores.max()
        probs = np.exp(scores)
        probs /= probs.sum()
        word = int(rng.choice(len(probs), p=probs))
        sampled.append(vocab[word])
        logits = engine.logits(np.array([[word]]))[0, -1]
    return sampled
