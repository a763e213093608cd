"""Adam and AMSGrad as Reddi, Kale & Kumar state them (docs/model.md §8): the update every
engine applies after global-norm clipping, in plain NumPy here, and the state it keeps.

With g the clipped gradient of one parameter and t the number of updates so far, from 1:

    m    = beta1 m + (1 - beta1) g
    v    = beta2 v + (1 - beta2) g^2
    vmax = max(vmax, v)                            (AMSGrad only; vmax then stands for v below)
    theta = theta - lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon)

which is ``torch.optim.Adam`` with ``amsgrad`` False or True. Every engine computes it in this
order of operations, so that in float64 they agree to rounding. The embedding gets the dense
update: rows the batch did not use still move, by their decaying m.

The state is plain arrays under the names of ``state_shapes``: ``t`` (a 0-d int64) and
``m_NAME``, ``v_NAME`` (and ``vmax_NAME``) in each parameter's canonical shape.
"""

from __future__ import annotations

import numpy as np

from ptb_lstm.config import Config
from ptb_lstm.params import Params, param_shapes

OptimizerState = dict[str, np.ndarray]


def moments(config: Config) -> tuple[str, ...]:
    """The per-parameter arrays ``config.optimizer`` keeps: none for SGD."""
    return {"sgd": (), "adam": ("m", "v"), "amsgrad": ("m", "v", "vmax")}[config.optimizer]


def state_shapes(config: Config, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every array of the optimizer's state ({} for SGD)."""
    if config.optimizer == "sgd":
        return {}
    params = param_shapes(config, vocab_size)
    return {
        "t": (),
        **{f"{part}_{name}": shape for part in moments(config) for name, shape in params.items()},
    }


def initial_state(config: Config, vocab_size: int, dtype) -> OptimizerState:
    """The state before the first update: t = 0 and every moment zero."""
    return {
        name: np.zeros((), np.int64) if name == "t" else np.zeros(shape, dtype)
        for name, shape in state_shapes(config, vocab_size).items()
    }


def bias_corrections(config: Config, t: int) -> tuple[float, float]:
    """(1 - beta1^t, 1 - beta2^t) for update ``t`` (from 1), computed once in float64 by
    every engine."""
    return 1.0 - config.beta1**t, 1.0 - config.beta2**t


class NumpyAdam:
    """Adam or AMSGrad over a dict of NumPy parameters, updated in place (both NumPy engines)."""

    def __init__(self, config: Config, vocab_size: int, dtype) -> None:
        self.config, self.dtype = config, np.dtype(dtype)
        self.set_state(initial_state(config, vocab_size, dtype))

    def get_state(self) -> OptimizerState:
        return {name: value.copy() for name, value in self.state.items()}

    def set_state(self, state: OptimizerState) -> None:
        self.state = {
            name: np.array(value, np.int64 if name == "t" else self.dtype)
            for name, value in state.items()
        }

    def update(self, params: Params, grads: Params, learning_rate: float, scale: float) -> None:
        """One update of every parameter by its gradient times the clipping ``scale``;
        ``grads`` (dense, canonical names) may be overwritten."""
        config, dtype, state = self.config, self.dtype.type, self.state
        t = int(state["t"]) + 1
        state["t"] = np.array(t, np.int64)
        correction1, correction2 = bias_corrections(config, t)
        for name, param in params.items():
            g = grads[name]
            g *= dtype(scale)  # clipped by global norm
            m, v = state[f"m_{name}"], state[f"v_{name}"]
            m *= dtype(config.beta1)
            m += dtype(1.0 - config.beta1) * g  # m = beta1 m + (1 - beta1) g
            v *= dtype(config.beta2)
            v += dtype(1.0 - config.beta2) * (g * g)  # v = beta2 v + (1 - beta2) g^2
            if config.optimizer == "amsgrad":
                v = np.maximum(state[f"vmax_{name}"], v, out=state[f"vmax_{name}"])
            denominator = np.sqrt(v / dtype(correction2)) + dtype(config.epsilon)
            param -= dtype(learning_rate) * (m / dtype(correction1)) / denominator
