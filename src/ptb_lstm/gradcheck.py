"""Check a NumPy engine's back-propagation against central differences, in float64.

The error of one array is max |analytic - numeric| / max(max |analytic|, 1e-6): the worst
entry's difference relative to the array's largest gradient. Every entry of every parameter and
of the incoming state (h0 and c0 of every layer) is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ptb_lstm.config import PRESETS, Config
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines import State, create_engine
from ptb_lstm.engines.numpy_engine import NumpyEngine
from ptb_lstm.engines.numpy_reference import ReferenceEngine
from ptb_lstm.params import init_params

TOLERANCE = 1e-6


@dataclass
class GradcheckRow:
    name: str
    entries: int
    max_abs_grad: float
    error: float
    analytic: np.ndarray | None = field(default=None, repr=False)  # with keep_values=True
    numeric: np.ndarray | None = field(default=None, repr=False)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "entries": self.entries,
            "max_abs_grad": self.max_abs_grad,
            "error": self.error,
        }


def gradcheck(
    seed: int = 0,
    dropout: float = 0.0,
    vocab_size: int = 11,
    hidden_size: int = 5,
    num_layers: int = 2,
    num_steps: int = 4,
    batch_size: int = 3,
    epsilon: float = 1e-5,
    keep_values: bool = False,
    engine: str = "numpy",
) -> list[GradcheckRow]:
    """Rows of (array, entries, largest |gradient|, error) for a tiny random model; with
    ``keep_values`` each row also carries the analytic and numeric gradients. ``engine`` is
    "numpy" or "numpy-reference" (the engines that compute their gradients by hand)."""
    if engine not in ("numpy", "numpy-reference"):
        raise ValueError(f"gradcheck needs a NumPy engine, got {engine!r}")
    config: Config = PRESETS["tiny"].replace(
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_steps=num_steps,
        batch_size=batch_size,
        init_scale=0.5,
        dropout=dropout,
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    model = create_engine(
        engine, config, init_params(config, vocab_size, np.float64), dtype="float64"
    )
    inputs = rng.integers(0, vocab_size, size=(batch_size, num_steps))
    targets = rng.integers(0, vocab_size, size=(batch_size, num_steps))
    state: State = [
        (
            rng.uniform(-0.5, 0.5, (batch_size, hidden_size)),
            rng.uniform(-0.5, 0.5, (batch_size, hidden_size)),
        )
        for _ in range(num_layers)
    ]
    masks = step_masks(config, step=0, dtype=np.float64)

    def loss() -> float:
        return model.gradients(inputs, targets, state, masks).loss

    grads = model.gradients(inputs, targets, state, masks)
    analytic = grads.by_name()
    assert isinstance(model, (NumpyEngine, ReferenceEngine))
    rows = []
    for name, value in model.params.items():  # its own arrays, which _compare perturbs
        rows.append(_compare(name, value, analytic[name], loss, epsilon))
    for layer, (h0, c0) in enumerate(state):
        dh0, dc0 = grads.state_grad[layer]
        rows.append(_compare(f"state_{layer}_h", h0, dh0, loss, epsilon))
        rows.append(_compare(f"state_{layer}_c", c0, dc0, loss, epsilon))
    if not keep_values:
        for row in rows:
            row.analytic = row.numeric = None
    return rows


def _compare(name, array, analytic, loss, epsilon) -> GradcheckRow:
    """Perturb every entry of ``array`` in place by ±epsilon and compare slopes."""
    numeric = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + epsilon
        plus = loss()
        array[index] = original - epsilon
        minus = loss()
        array[index] = original
        numeric[index] = (plus - minus) / (2 * epsilon)
    scale = max(float(np.abs(analytic).max()), 1e-6)
    error = float(np.abs(analytic - numeric).max()) / scale
    return GradcheckRow(
        name, int(array.size), float(np.abs(analytic).max()), error, np.array(analytic), numeric
    )
