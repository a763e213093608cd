"""The canonical parameter layout every engine reads and writes (docs/model.md §2), and the one
initialisation every engine starts from."""

from __future__ import annotations

import numpy as np

from ptb_lstm.config import Config

Params = dict[str, np.ndarray]

DTYPES = {"float32": np.float32, "float64": np.float64}


def param_shapes(config: Config, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """Name -> shape, in the canonical order; gates are laid out i, f, g, o."""
    hidden = config.hidden_size
    shapes: dict[str, tuple[int, ...]] = {"embedding": (vocab_size, hidden)}
    for layer in range(config.num_layers):
        shapes[f"lstm_{layer}_kernel"] = (hidden, 4 * hidden)  # input size = hidden everywhere
        shapes[f"lstm_{layer}_recurrent_kernel"] = (hidden, 4 * hidden)
        shapes[f"lstm_{layer}_bias"] = (4 * hidden,)
    shapes["softmax_kernel"] = (hidden, vocab_size)
    shapes["softmax_bias"] = (vocab_size,)
    return shapes


def init_params(config: Config, vocab_size: int, dtype=np.float32, seed: int | None = None
                ) -> Params:
    """Every parameter uniform in ±init_scale from one seeded generator, drawn in float64 in
    the canonical order so float32 and float64 runs start from the same values."""
    rng = np.random.default_rng(config.seed if seed is None else seed)
    scale = config.init_scale
    return {name: rng.uniform(-scale, scale, size=shape).astype(dtype)
            for name, shape in param_shapes(config, vocab_size).items()}


def count_params(params: Params) -> int:
    return int(sum(p.size for p in params.values()))


def check_params(params: Params, config: Config, vocab_size: int, source: str) -> None:
    """Raise ValueError naming the first missing, extra or mis-shaped parameter."""
    expected = param_shapes(config, vocab_size)
    missing = [n for n in expected if n not in params]
    extra = [n for n in params if n not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("unexpected " + ", ".join(extra))
        raise ValueError(f"{source}: parameters do not match the config ({'; '.join(parts)})")
    for name, shape in expected.items():
        array = params[name]
        if tuple(array.shape) != shape:
            raise ValueError(f"{source}: {name} has shape {tuple(array.shape)}, the config and "
                             f"vocabulary need {shape}")
        if array.dtype not in (np.float32, np.float64):
            raise ValueError(f"{source}: {name} has dtype {array.dtype}; expected float32 "
                             "or float64")
