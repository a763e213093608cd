"""One ``.npz`` file per checkpoint: canonical parameters plus a ``meta`` entry of UTF-8 JSON.

Readable with ``numpy.load(path, allow_pickle=False)``; written atomically
(``atomic.write_atomic``: temporary file in the same folder, fsync, rename), so a crash never
leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptb_lstm import __version__, bounds, runfiles
from ptb_lstm.atomic import write_atomic
from ptb_lstm.config import Config, from_dict
from ptb_lstm.errors import UserError
from ptb_lstm.params import Params, check_params, count_layers

FORMAT = "ptb-lstm-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """Parameters with what is needed to use them: vocabulary, config and progress."""

    params: Params
    vocab: list[str]
    config: Config
    progress: dict = field(default_factory=dict)  # epoch, step, learning_rate, ...
    engine: str = "numpy"
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)
    # The carried LSTM state, (h, c) per layer, when written mid-epoch for an exact resume.
    carried: list[tuple[np.ndarray, np.ndarray]] | None = None
    # Adam's or AMSGrad's state (ptb_lstm.optim), so that --resume continues the same updates;
    # None for SGD, which keeps none.
    optimizer: dict[str, np.ndarray] | None = None

    def meta(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "ptb_lstm_version": __version__,
            "vocab": self.vocab,
            "config": self.config.to_dict(),
            "progress": self.progress,
            "engine": self.engine,
            "dtype": self.dtype,
            **self.extra,
        }


def save(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically; returns the path."""
    path = Path(path)
    check_params(checkpoint.params, checkpoint.config, len(checkpoint.vocab), str(path))
    meta = np.frombuffer(json.dumps(checkpoint.meta()).encode("utf-8"), dtype=np.uint8)
    arrays = {"meta": meta}
    arrays.update((name, np.ascontiguousarray(value)) for name, value in checkpoint.params.items())
    for layer, (h, c) in enumerate(checkpoint.carried or []):
        arrays[f"carried_{layer}_h"] = np.ascontiguousarray(h)
        arrays[f"carried_{layer}_c"] = np.ascontiguousarray(c)
    for name, value in (checkpoint.optimizer or {}).items():
        # np.array, not ascontiguousarray, which would make the 0-d t a [1] array
        arrays[f"{OPTIMIZER_PREFIX}{name}"] = np.array(value, order="C")
    path.parent.mkdir(parents=True, exist_ok=True)
    # numpy's stubs check **kwds against savez's allow_pickle flag; every value is an array
    return write_atomic(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def load(path: str | Path) -> Checkpoint:
    """Read and check a checkpoint; any problem is a UserError naming the file."""
    path = Path(path)
    _check_container(path)
    arrays = _read_arrays(path)
    meta = _pop_meta(arrays, path)
    vocab = meta["vocab"]
    config = from_dict(meta["config"], source=f"checkpoint {path}")
    _check_declared_sizes(arrays, config, path)
    carried = _pop_carried(arrays, config, path)
    optimizer = _pop_optimizer(arrays, config, len(vocab), path)
    try:
        check_params(arrays, config, len(vocab), f"checkpoint {path}")
    except ValueError as error:
        raise UserError(str(error)) from None
    dtype = _one_dtype(arrays, carried, optimizer, path)
    _refuse_non_finite(arrays, carried, path)
    known = {
        "format",
        "version",
        "ptb_lstm_version",
        "vocab",
        "config",
        "progress",
        "engine",
        "dtype",
    }
    return Checkpoint(
        params=arrays,
        vocab=vocab,
        config=config,
        progress=meta["progress"],
        engine=meta.get("engine", "unknown"),
        dtype=str(dtype),
        extra={k: v for k, v in meta.items() if k not in known},
        carried=carried,
        optimizer=optimizer,
    )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every member of the .npz, never unpickled; each must be a NumPy array."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise UserError(
                f"checkpoint {path} holds a pickled object; ptb-lstm never "
                "unpickles files. Re-save the arrays as plain numeric arrays"
            ) from None
        reason = (str(error).splitlines() or ["ValueError"])[0]
        raise UserError(f"checkpoint {path} is not a readable .npz file ({reason})") from None
    except Exception as error:  # any failure to decode the archive's bytes: a bad zip, an
        # unsupported or encrypted member, a damaged .npy header, ...
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise UserError(
            f"checkpoint {path} is truncated or not an .npz file ({reason}); "
            "use an intact model.npz written by ptb-lstm"
        ) from None
    raw = [name for name, value in arrays.items() if not isinstance(value, np.ndarray)]
    if raw:  # a member not written by numpy.save: np.load hands back its bytes
        raise UserError(
            f"checkpoint {path}: {bounds.listed(map(repr, raw))} inside it is not a "
            "NumPy array; use an intact model.npz written by ptb-lstm"
        )
    return arrays


def _pop_meta(arrays: dict[str, np.ndarray], path: Path) -> dict:
    """The ``meta`` entry, taken out of ``arrays`` and checked: format, version, vocabulary,
    config and the fields ``runfiles.check_meta`` knows."""
    if "meta" not in arrays:
        raise UserError(f"checkpoint {path} has no 'meta' entry; was it written by ptb-lstm?")
    meta_array = arrays.pop("meta")
    try:
        if meta_array.dtype != np.uint8:
            raise ValueError("meta is not uint8 bytes")
        text = meta_array.tobytes().decode("utf-8")
        bounds.check_json_depth(text, f"checkpoint {path}: meta")
        meta = json.loads(text)
        if not isinstance(meta, dict):
            raise ValueError("meta is not a JSON object")
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise UserError(f"checkpoint {path}: unreadable meta ({error})") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"checkpoint {path}: format {meta.get('format')!r} is not {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise UserError(
            f"checkpoint {path}: format version {meta.get('version')!r}; this "
            f"ptb-lstm reads version {VERSION} (upgrade or downgrade ptb-lstm)"
        )
    vocab = meta.get("vocab")
    if not isinstance(vocab, list) or not vocab or not all(isinstance(w, str) for w in vocab):
        raise UserError(f"checkpoint {path}: meta.vocab must be a non-empty list of words")
    if len(set(vocab)) != len(vocab):
        raise UserError(f"checkpoint {path}: meta.vocab repeats words")
    if not isinstance(meta.get("config"), dict):
        raise UserError(f"checkpoint {path}: meta.config is missing")
    return runfiles.check_meta(meta, f"checkpoint {path}")


def _one_dtype(
    arrays: dict[str, np.ndarray],
    carried: list | None,
    optimizer: dict | None,
    path: Path,
) -> np.dtype:
    """The one dtype of the parameters, which the carried and optimizer states share."""
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) != 1:
        raise UserError(f"checkpoint {path}: parameters mix dtypes {sorted(map(str, dtypes))}")
    dtype = next(iter(dtypes))
    if optimizer and any(v.dtype != dtype for n, v in optimizer.items() if n != "t"):
        raise UserError(
            f"checkpoint {path}: the optimizer state's dtype is not the parameters' ({dtype})"
        )
    if carried and any(part.dtype != dtype for pair in carried for part in pair):
        raise UserError(
            f"checkpoint {path}: the carried state's dtype is not the parameters' ({dtype})"
        )
    return dtype


def _check_container(path: Path) -> None:
    """Refuse, by what it is, a path that cannot hold a checkpoint: a missing path, a folder,
    a single .npy array, a pickle, or any other file that is not a zip archive."""
    if path.is_dir():
        inside = path / "model.npz"
        hint = (
            f"; the run's checkpoint is {inside}"
            if inside.is_file()
            else "; give the model.npz file a run wrote"
        )
        raise UserError(f"checkpoint {path} is a folder, not a checkpoint file{hint}")
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as error:
        raise UserError(f"checkpoint {path}: cannot read it ({error.strerror})") from None
    if head.startswith(b"\x93NUMPY"):
        raise UserError(
            f"checkpoint {path} is a single NumPy array (.npy), not a checkpoint; "
            "a checkpoint is the .npz archive (model.npz) that ptb-lstm train writes"
        )
    if head.startswith(b"\x80"):
        raise UserError(
            f"checkpoint {path} is a pickle; ptb-lstm never unpickles files. Use "
            "a model.npz written by ptb-lstm"
        )
    if not head.startswith(b"PK"):
        raise UserError(
            f"checkpoint {path} is not an .npz archive (not a zip file); use a "
            "model.npz written by ptb-lstm train"
        )


def _check_declared_sizes(arrays: dict, config: Config, path: Path) -> None:
    """The sizes meta.config declares against the arrays present, before any loop over the
    layers or any shape is built from them: a meta claiming a billion layers beside a small
    model's arrays is one short line, not a long wait and a megabyte-long list of names."""
    layers = count_layers(arrays)
    if config.num_layers != layers:
        raise UserError(
            f"checkpoint {path}: meta.config.num_layers is {config.num_layers}, "
            f"but it holds the weights of {layers} layer(s) (lstm_{{l}}_kernel)"
        )


def _pop_carried(arrays: dict, config: Config, path: Path) -> list | None:
    """Take the carried_{l}_h / carried_{l}_c arrays out of ``arrays``, checking them."""
    names = [n for n in arrays if n.startswith("carried_")]
    if not names:
        return None
    carried = []
    for layer in range(config.num_layers):
        pair = [arrays.pop(f"carried_{layer}_{part}", None) for part in ("h", "c")]
        # The state is carried between training steps of config.batch_size streams; one of
        # another batch size would be broadcast by NumPy and training would go on, wrongly.
        shape = (config.batch_size, config.hidden_size)
        for part, value in zip(("h", "c"), pair, strict=True):
            if value is None:
                raise UserError(
                    f"checkpoint {path}: carried_{layer}_{part} is missing; the "
                    "carried state needs h and c of every layer"
                )
            if value.shape != shape or value.dtype not in (np.float32, np.float64):
                raise UserError(
                    f"checkpoint {path}: carried_{layer}_{part} is "
                    f"{value.dtype} {tuple(value.shape)}; the config needs a float "
                    f"[batch_size, hidden_size] = {shape} state"
                )
        carried.append((pair[0], pair[1]))
    extra = [n for n in arrays if n.startswith("carried_")]
    if extra:
        raise UserError(f"checkpoint {path}: unexpected arrays {bounds.listed(extra)}")
    return carried


OPTIMIZER_PREFIX = "optimizer_"


def _pop_optimizer(arrays: dict, config: Config, vocab_size: int, path: Path) -> dict | None:
    """Take the optimizer_* arrays out of ``arrays``, checked against the config's optimizer:
    every one of ``optim.state_shapes`` or none (a checkpoint without them loads, but cannot
    be resumed exactly)."""
    from ptb_lstm.optim import state_shapes

    found = {
        n[len(OPTIMIZER_PREFIX) :]: arrays.pop(n)
        for n in list(arrays)
        if n.startswith(OPTIMIZER_PREFIX)
    }
    if not found:
        return None
    expected = state_shapes(config, vocab_size)
    if not expected:
        raise UserError(
            f"checkpoint {path}: holds optimizer arrays but its config trains "
            f"with {config.optimizer}, which keeps none"
        )
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    if missing or extra:
        what = "; ".join(
            part
            for part in (
                "missing " + ", ".join(OPTIMIZER_PREFIX + n for n in missing) if missing else "",
                "unexpected " + ", ".join(OPTIMIZER_PREFIX + n for n in extra) if extra else "",
            )
            if part
        )
        raise UserError(
            f"checkpoint {path}: the {config.optimizer} state does not match the config ({what})"
        )
    t = found["t"]
    if t.shape != () or t.dtype.kind not in "iu" or int(t) < 0:
        raise UserError(
            f"checkpoint {path}: {OPTIMIZER_PREFIX}t must be a whole number >= 0 "
            f"(a 0-d integer array), got {t.dtype} {tuple(t.shape)}"
        )
    for name, shape in expected.items():
        value = found[name]
        if name == "t":
            continue
        if tuple(value.shape) != shape or value.dtype not in (np.float32, np.float64):
            raise UserError(
                f"checkpoint {path}: {OPTIMIZER_PREFIX}{name} is {value.dtype} "
                f"{tuple(value.shape)}; the config needs a float {shape}"
            )
        if not np.isfinite(value).all() or (name[0] == "v" and (value < 0).any()):
            raise UserError(
                f"checkpoint {path}: {OPTIMIZER_PREFIX}{name} holds NaN, infinite "
                "or (for a second moment) negative values; use an earlier "
                "checkpoint of the run"
            )
    return {name: found[name] for name in expected}


def _refuse_non_finite(params: Params, carried: list | None, path: Path) -> None:
    """A NaN or an infinity anywhere makes every output of the model meaningless (perplexity
    inf, NaN scores, a sampler with no distribution): refuse it here, naming the arrays."""
    arrays = dict(params)
    for layer, (h, c) in enumerate(carried or []):
        arrays[f"carried_{layer}_h"], arrays[f"carried_{layer}_c"] = h, c
    bad = [name for name, value in arrays.items() if not np.isfinite(value).all()]
    if bad:
        raise UserError(
            f"checkpoint {path}: {', '.join(bad)} hold NaN or infinite values, so "
            "the model computes nothing meaningful; use an earlier checkpoint of "
            "the run, or retrain with a smaller learning_rate"
        )
