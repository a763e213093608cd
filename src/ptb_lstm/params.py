"""The canonical parameter layout every engine reads and writes (docs/model.md §2), and the one
initialisation every engine starts from."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ptb_lstm.bounds import listed
from ptb_lstm.config import Config
from ptb_lstm.errors import UserError

Params = dict[str, np.ndarray]

DTYPES = {"float32": np.float32, "float64": np.float64}

_LAYER_KERNEL = re.compile(r"lstm_(\d+)_kernel")


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


def init_params(
    config: Config, vocab_size: int, dtype=np.float32, seed: int | None = None
) -> Params:
    """Every parameter uniform in ±init_scale from one seeded generator, drawn in float64 in
    the canonical order so float32 and float64 runs start from the same values. A model too
    large to train in the memory that is free is refused first (``check_memory``)."""
    check_memory(config, vocab_size, dtype)
    rng = np.random.default_rng(config.seed if seed is None else seed)
    scale = config.init_scale
    return {
        name: rng.uniform(-scale, scale, size=shape).astype(dtype)
        for name, shape in param_shapes(config, vocab_size).items()
    }


def check_memory(config: Config, vocab_size: int, dtype=np.float32) -> None:
    """Refuse, before anything is allocated, a model whose training needs more memory than
    the machine has free: the parameters three times over (weights, gradients, the engine's
    own copy), twice or three times more for Adam's or AMSGrad's moments, and one batch's
    activations (about ten [num_steps, batch, hidden] arrays per layer and three
    [num_steps, batch, vocab] arrays for the softmax)."""
    itemsize = np.dtype(dtype).itemsize
    # Counted from the sizes (param_shapes' layout), not by building every layer's shapes:
    # num_layers may be any 64-bit number here, and only the estimate refuses it.
    hidden, layers = config.hidden_size, config.num_layers
    parameters = 2 * vocab_size * hidden + vocab_size + layers * (8 * hidden * hidden + 4 * hidden)
    tokens = config.num_steps * config.batch_size
    activations = tokens * (10 * config.hidden_size * config.num_layers + 3 * vocab_size)
    copies = 3 + {"adam": 2, "amsgrad": 3}.get(config.optimizer, 0)
    needed = itemsize * (copies * parameters + activations)
    available = available_memory()
    if available is not None and needed > available:
        raise UserError(
            f"this model needs about {_gib(needed)} GiB of memory to train "
            f"({parameters:,} parameters in {np.dtype(dtype).name}, their "
            f"gradients and one batch's activations), more than the "
            f"{_gib(available)} GiB free; use a smaller hidden_size, "
            "num_layers, batch_size or num_steps"
        )


def _gib(size: int) -> str:
    gib = size / 2**30
    return f"{gib:,.1f}" if gib < 1e9 else f"{gib:.3g}"  # a short line for absurd sizes


def available_memory() -> int | None:
    """Bytes of memory free for a new process (MemAvailable plus free swap), or None where
    the system does not say."""
    try:
        fields = dict(
            line.split(":", 1)
            for line in Path("/proc/meminfo").read_text().splitlines()
            if ":" in line
        )
        return sum(int(fields[name].split()[0]) * 1024 for name in ("MemAvailable", "SwapFree"))
    except (OSError, KeyError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def count_params(params: Params) -> int:
    return int(sum(p.size for p in params.values()))


def count_layers(arrays: dict) -> int:
    """How many layers' kernels (``lstm_{l}_kernel``) ``arrays`` holds, whatever the config
    declares."""
    return sum(1 for name in arrays if _LAYER_KERNEL.fullmatch(name))


def check_params(params: Params, config: Config, vocab_size: int, source: str) -> None:
    """Raise ValueError naming the first missing, extra or mis-shaped parameter."""
    # The layers are counted before param_shapes lists them: a config of a billion layers
    # (from --set, or a file) beside a small model's parameters is one short line at once.
    layers = count_layers(params)
    if config.num_layers != layers:
        raise ValueError(
            f"{source}: the config has num_layers {config.num_layers}, the "
            f"parameters {layers} layer(s) (lstm_{{l}}_kernel)"
        )
    expected = param_shapes(config, vocab_size)
    missing = [n for n in expected if n not in params]
    extra = [n for n in params if n not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + listed(missing))
        if extra:
            parts.append("unexpected " + listed(extra))
        raise ValueError(f"{source}: parameters do not match the config ({'; '.join(parts)})")
    for name, shape in expected.items():
        array = params[name]
        if tuple(array.shape) != shape:
            raise ValueError(
                f"{source}: {name} has shape {tuple(array.shape)}, the config and "
                f"vocabulary need {shape}"
            )
        if array.dtype not in (np.float32, np.float64):
            raise ValueError(
                f"{source}: {name} has dtype {array.dtype}; expected float32 or float64"
            )
