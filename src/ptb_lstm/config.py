"""Hyper-parameters: one dataclass, the paper's presets, TOML files and ``key=value`` overrides."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ptb_lstm import bounds
from ptb_lstm.errors import UserError


@dataclass(frozen=True)
class Config:
    """Every hyper-parameter of one model and its training schedule (docs/model.md §1)."""

    num_layers: int
    hidden_size: int
    num_steps: int
    batch_size: int
    init_scale: float
    learning_rate: float
    lr_decay: float
    epochs: int
    epochs_at_full_lr: int
    max_grad_norm: float
    dropout: float
    seed: int = 1
    # The optimizer (docs/model.md §5): the paper's plain SGD, or Adam / AMSGrad as Reddi,
    # Kale & Kumar (2018) state them; the betas and epsilon are read by adam and amsgrad only.
    optimizer: str = "sgd"
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise UserError("invalid config: " + "; ".join(problems))

    def lr_at_epoch(self, epoch: int) -> float:
        """Learning rate of 1-based ``epoch``: full for ``epochs_at_full_lr``, then decayed."""
        return self.learning_rate * self.lr_decay ** max(0, epoch - self.epochs_at_full_lr)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)


FIELD_TYPES: dict[str, type] = {
    f.name: {"int": int, "str": str}.get(str(f.type), float) for f in fields(Config)
}

#: What ``optimizer`` accepts: the paper's SGD, Adam, and Adam with AMSGrad's running maximum.
OPTIMIZERS = ("sgd", "adam", "amsgrad")

# Fields a config written before they existed lacks; they take their defaults.
_OPTIONAL = ("seed", "optimizer", "beta1", "beta2", "epsilon")

_POSITIVE = (
    "num_layers",
    "hidden_size",
    "num_steps",
    "batch_size",
    "epochs",
    "init_scale",
    "learning_rate",
    "lr_decay",
    "max_grad_norm",
)


FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32


def _problems(config: Config) -> list[str]:
    problems = []
    for name, kind in FIELD_TYPES.items():
        value = getattr(config, name)
        if kind is str:
            if not isinstance(value, str):
                problems.append(f"{name} must be a string, got {value!r}")
            continue
        ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
        if not ok or isinstance(value, bool):
            problems.append(
                f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}"
            )
    if problems:
        return problems
    for name, kind in FIELD_TYPES.items():
        if kind is float and not math.isfinite(getattr(config, name)):
            problems.append(f"{name} must be a finite number, got {getattr(config, name)!r}")
    if problems:
        return problems
    for name in _POSITIVE:
        if not getattr(config, name) > 0:
            problems.append(f"{name} must be > 0, got {getattr(config, name)!r}")
    if config.init_scale > FLOAT32_MAX:  # uniform(-s, s) in float32 would give infinities
        problems.append(
            f"init_scale must be at most {FLOAT32_MAX:.3g} (the initial weights "
            f"must be finite in float32), got {config.init_scale!r}"
        )
    if config.epochs_at_full_lr < 0:
        problems.append(f"epochs_at_full_lr must be >= 0, got {config.epochs_at_full_lr}")
    if not 0 <= config.dropout < 1:
        problems.append(f"dropout must be in [0, 1), got {config.dropout}")
    if config.seed < 0:
        problems.append(f"seed must be >= 0, got {config.seed}")
    if config.optimizer not in OPTIMIZERS:
        problems.append(
            f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.optimizer!r}"
        )
    for name in ("beta1", "beta2"):
        if not 0 <= getattr(config, name) < 1:
            problems.append(f"{name} must be in [0, 1), got {getattr(config, name)}")
    if not config.epsilon > 0:
        problems.append(f"epsilon must be > 0, got {config.epsilon}")
    return problems


PRESETS: dict[str, Config] = {
    "small": Config(
        num_layers=2,
        hidden_size=200,
        num_steps=20,
        batch_size=20,
        init_scale=0.1,
        learning_rate=1.0,
        lr_decay=0.5,
        epochs=13,
        epochs_at_full_lr=4,
        max_grad_norm=5.0,
        dropout=0.0,
    ),
    "medium": Config(
        num_layers=2,
        hidden_size=650,
        num_steps=35,
        batch_size=20,
        init_scale=0.05,
        learning_rate=1.0,
        lr_decay=0.8,
        epochs=39,
        epochs_at_full_lr=6,
        max_grad_norm=5.0,
        dropout=0.5,
    ),
    "large": Config(
        num_layers=2,
        hidden_size=1500,
        num_steps=35,
        batch_size=20,
        init_scale=0.04,
        learning_rate=1.0,
        lr_decay=1 / 1.15,
        epochs=55,
        epochs_at_full_lr=14,
        max_grad_norm=10.0,
        dropout=0.65,
    ),
    # A few units: for tests, gradient checks and quick tries on any corpus. Its init_scale is
    # near 1/sqrt(hidden_size): at 0.1 a 16-unit model sits on a plateau for many epochs.
    "tiny": Config(
        num_layers=2,
        hidden_size=16,
        num_steps=5,
        batch_size=4,
        init_scale=0.3,
        learning_rate=1.0,
        lr_decay=0.5,
        epochs=2,
        epochs_at_full_lr=1,
        max_grad_norm=5.0,
        dropout=0.0,
    ),
}


def _coerce(name: str, value: object, source: str) -> int | float | str:
    if name not in FIELD_TYPES:
        raise UserError(
            f"{source}: unknown config key {bounds.shown(name)}; valid keys: "
            + ", ".join(FIELD_TYPES)
        )
    kind = FIELD_TYPES[name]
    if kind is str:
        if not isinstance(value, str):
            raise UserError(f"{source}: {name} must be a string, got {bounds.shown(value)}")
        return value
    what = "an integer" if kind is int else "a number"
    try:
        if isinstance(value, str):
            coerced = kind(value) if kind is float else int(value, 10)
        elif isinstance(value, bool):
            raise ValueError
        elif kind is int and isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            coerced = int(value)
        else:
            coerced = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{source}: {name} must be {what}, got {bounds.shown(value)}") from None
    # Every size, count and seed is used as a 64-bit integer (and a size drives loops and
    # allocations): a larger one is refused here, before anything is sized by it.
    if kind is int and not -(2**63) <= coerced < 2**63:
        raise UserError(
            f"{source}: {name} must be {what} of at most 19 digits (below 2**63), "
            f"got {bounds.shown(value)}"
        )
    return coerced


def from_dict(values: dict, source: str) -> Config:
    """Build a Config from a complete mapping of field name to value."""
    # Each value is checked against its field's type by _coerce.
    coerced: dict[str, Any] = {name: _coerce(name, value, source) for name, value in values.items()}
    missing = [name for name in FIELD_TYPES if name not in coerced and name not in _OPTIONAL]
    if missing:
        raise UserError(f"{source}: missing config keys: {', '.join(missing)}")
    try:
        return Config(**coerced)
    except UserError as error:
        raise UserError(f"{source}: {error}") from None


def load_config(name_or_path: str) -> Config:
    """A preset name (small, medium, large, tiny) or a TOML file holding every field."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    path = Path(name_or_path)
    if not path.suffix == ".toml" and not path.exists():
        raise UserError(
            f"--config: unknown preset {bounds.shown(name_or_path)}; use one of "
            f"{', '.join(PRESETS)} or a .toml file"
        )
    source = f"--config {bounds.shown_path(path)}"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{source} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{source} is a folder, not a TOML file") from None
    except OSError as error:
        raise bounds.os_error(error, source) from None
    text = bounds.decode_text(raw, source)
    bounds.check_toml_depth(text, source)
    try:
        values = tomllib.loads(text)
    except (ValueError, RecursionError) as error:  # TOMLDecodeError, or an integer too long
        # for int() (over 4,300 digits); RecursionError only if the depth check missed a form
        reason = (str(error).splitlines() or [type(error).__name__])[0][:200]
        raise UserError(f"{source} is not valid TOML: {reason}") from None
    base = values.pop("preset", None)
    if base is not None:
        if not isinstance(base, str) or base not in PRESETS:
            raise UserError(
                f"{path}: preset must be one of {', '.join(PRESETS)}, got {bounds.shown(base)}"
            )
        return apply_overrides(PRESETS[base], values, source=str(path))
    return from_dict(values, source=str(path))


def apply_overrides(config: Config, values: dict, source: str = "--set") -> Config:
    """Replace fields of ``config`` with ``values`` (strings or numbers), checking each."""
    changes = {name: _coerce(name, value, source) for name, value in values.items()}
    try:
        return config.replace(**changes)
    except UserError as error:
        raise UserError(f"{source}: {error}") from None


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` from ``--set`` into a dict, rejecting malformed pairs."""
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(
                f"--set: expected key=value, got {bounds.shown(pair)}; valid keys: "
                + ", ".join(FIELD_TYPES)
            )
        values[key.strip()] = value.strip()
    return values
