"""Dropout masks that every engine shares: a function of the seed and the training step alone.

The paper applies dropout to the non-recurrent connections only: the embedding output going
into the first layer, the output of each layer going into the next, and the top layer's output
going into the softmax; never to h(t-1) -> h(t), and never at evaluation. This module draws the
L + 1 masks of one training step; the trainer hands them to the engine's ``train_step``, and
every engine multiplies its activations by them. So the engines apply the same masks to the
same units, and their training runs can be compared step by step with dropout too.

The generator is counter-based (Philox): the masks of step ``s`` (0-based, counted over the
whole run) under ``seed`` come from key ``seed`` and counter block ``s``, whatever was drawn
before. Nothing needs saving for a resumed run to draw the masks an uninterrupted run draws.

Masks are inverted dropout, time-major like the engines' activations: each is an array
[num_steps, batch_size, hidden_size] holding 0 (dropped) or 1 / (1 - rate) (kept), so that the
expected activation is unchanged and evaluation needs no rescaling.
"""

from __future__ import annotations

import numpy as np

from ptb_lstm.config import Config

# Each step's draws start at counter word 1 = step, so steps never share Philox blocks
# (a step uses far fewer than 2**64 blocks).
_STEP_STRIDE = 1 << 64


def generator(seed: int, step: int) -> np.random.Generator:
    """The random generator of training step ``step`` (0-based) of a run seeded ``seed``."""
    if seed < 0 or step < 0:
        raise ValueError(f"seed and step must be >= 0, got {seed} and {step}")
    return np.random.Generator(np.random.Philox(key=seed, counter=step * _STEP_STRIDE))


def masks(
    seed: int,
    step: int,
    rate: float,
    num_layers: int,
    batch_size: int,
    num_steps: int,
    hidden_size: int,
    dtype=np.float32,
) -> list[np.ndarray]:
    """The ``num_layers + 1`` masks [num_steps, batch_size, hidden_size] of one training step:
    index 0 for the embedding output, l for layer l-1's output into layer l, ``num_layers`` for
    the top layer's output into the softmax."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"a dropout rate must be in (0, 1), got {rate}")
    keep = 1.0 - rate
    # A unit is kept when a uniform 16-bit integer falls below keep * 2**16 rounded (so the
    # keep probability is keep to within 2**-17; a keep above 1 - 2**-17, a rate below 2**-17,
    # is capped at 65535 / 65536): half the random bits of a float32 draw, and the same units
    # whatever the engine's dtype.
    threshold = np.uint16(min(round(keep * 65536), 65535))
    rng = generator(seed, step)
    shape = (num_steps, batch_size, hidden_size)
    scale = np.asarray(1.0 / keep, dtype)
    result = []
    for _ in range(num_layers + 1):
        kept = rng.integers(0, 65536, shape, dtype=np.uint16) < threshold
        result.append(kept.astype(dtype) * scale)
    return result


def step_masks(
    config: Config,
    step: int,
    batch_size: int | None = None,
    num_steps: int | None = None,
    dtype=np.float32,
) -> list[np.ndarray] | None:
    """The masks of training step ``step`` of a run with ``config`` (its seed, dropout rate and
    shapes), or None when the config has no dropout."""
    if config.dropout <= 0:
        return None
    return masks(
        config.seed,
        step,
        config.dropout,
        config.num_layers,
        config.batch_size if batch_size is None else batch_size,
        config.num_steps if num_steps is None else num_steps,
        config.hidden_size,
        dtype,
    )
