"""Perplexity of one split: the carried state starts at zero and runs through the whole split."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from ptb_lstm.data import batches, num_batches
from ptb_lstm.engines import Engine
from ptb_lstm.errors import UserError


@dataclass
class Evaluation:
    perplexity: float
    nll: float  # summed over every target token
    tokens: int
    steps: int
    batch_size: int
    num_steps: int

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(
    engine: Engine,
    ids: np.ndarray,
    batch_size: int,
    num_steps: int,
    on_step: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """exp(total NLL / target tokens) over the stream-folded batches of ``ids``.

    ``on_step(done, total)`` is called after every step (for a progress bar).
    """
    total_steps = num_batches(len(ids), batch_size, num_steps)
    if total_steps == 0:
        raise UserError(
            f"{len(ids)} tokens are too few for one batch of {batch_size} x "
            f"{num_steps}; use a smaller --batch-size or --num-steps"
        )
    engine.reset_state(batch_size)
    nll = 0.0
    for step, (inputs, targets) in enumerate(batches(ids, batch_size, num_steps), start=1):
        nll += engine.eval_step(inputs, targets)
        if on_step is not None:
            on_step(step, total_steps)
    tokens = total_steps * batch_size * num_steps
    return Evaluation(perplexity(nll, tokens), nll, tokens, total_steps, batch_size, num_steps)


def perplexity(nll: float, tokens: int) -> float:
    """exp(nll / tokens) for a negative log-likelihood ``nll`` summed over ``tokens``; infinite
    rather than an overflow error for a diverged model, NaN for no tokens."""
    if tokens == 0:
        return float("nan")
    mean = nll / tokens
    return math.exp(mean) if mean < 700 else float("inf")
