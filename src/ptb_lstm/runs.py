"""Run folders: naming and creating them, and deciding what a training run starts from.

A run is a folder holding ``config.json``, ``metrics.jsonl`` and ``model.npz``. A new run
starts from fresh weights or from a checkpoint (``init_from``); a resumed run continues its own
folder with its own config, engine and dtype. The command line turns flags into a ``RunRequest``;
``prepare`` turns that into everything ``train.train`` needs, or raises a UserError.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if sys.platform == "win32":  # folders are still claimed by mkdir, but not locked
    fcntl = None
else:
    import fcntl

from ptb_lstm import checkpoint, runfiles
from ptb_lstm.config import PRESETS, Config, apply_overrides, load_config
from ptb_lstm.data import Corpus, load_corpus
from ptb_lstm.errors import UserError
from ptb_lstm.params import DTYPES, Params, check_params, init_params
from ptb_lstm.runfiles import NO_ROOM, Resume, no_room_message

DEFAULT_CONFIG = "small"
DEFAULT_ENGINE = "numpy"
DEFAULT_DTYPE = "float32"
DEFAULT_LOG_EVERY = 100
DEFAULT_CHECKPOINT_EVERY = 500


@dataclass
class RunRequest:
    """What the user asked for; None means "not given" (defaults and precedence are decided in
    ``prepare``)."""

    config: str | None = None  # a preset name or a TOML file
    overrides: dict = field(default_factory=dict)  # KEY -> VALUE text, as --set gives them
    epochs: int | None = None
    seed: int | None = None
    engine: str | None = None
    dtype: str | None = None
    out: str | None = None
    init_from: str | None = None
    resume: str | None = None  # a run folder
    data_dir: str | None = None
    log_every: int | None = None
    checkpoint_every: int | None = None


@dataclass
class PreparedRun:
    """Everything a training run starts from."""

    out_dir: Path
    config: Config
    params: Params
    engine: str
    dtype: str
    corpus: Corpus
    log_every: int
    checkpoint_every: int
    resume: Resume | None = None
    claim: RunClaim | None = None
    # What --init-from leaves behind, said at the start: the optimizer's state is not carried.
    init_note: str | None = None

    def release(self) -> None:
        """Give up the claim on the run folder (the command does at exit)."""
        if self.claim is not None:
            self.claim.release()


def prepare(request: RunRequest, locate) -> PreparedRun:
    """The run ``request`` describes. ``locate(data_dir_or_None)`` finds PTB (the command line
    passes its own, which draws a download bar).

    Precedence of the config: --resume takes the run's own config and refuses every flag that
    would change it; otherwise the --config file or preset, else the --init-from checkpoint's
    config, else ``small``; then --set overrides, then --epochs and --seed."""
    if request.resume:
        return _prepare_resume(request, Path(request.resume), locate)
    engine = request.engine or DEFAULT_ENGINE
    dtype = request.dtype or DEFAULT_DTYPE
    start = checkpoint.load(request.init_from) if request.init_from else None
    if request.config is not None:
        config = load_config(request.config)
    else:
        config = start.config if start else PRESETS[DEFAULT_CONFIG]
    config = apply_overrides(config, request.overrides)
    if request.epochs is not None:
        config = config.replace(epochs=request.epochs)
    if request.seed is not None:
        config = apply_overrides(config, {"seed": request.seed}, source="--seed")
    corpus = load_corpus(locate(request.data_dir), vocab=start.vocab if start else None)
    if start:
        try:
            check_params(
                start.params, config, corpus.vocab_size, f"--init-from {request.init_from}"
            )
        except ValueError as error:
            raise UserError(f"{error}; pass the --config the checkpoint was trained with") from None
        params = start.params
    else:
        params = init_params(config, corpus.vocab_size, DTYPES[dtype])
    note = None
    if start and (config.optimizer != "sgd" or start.optimizer is not None):
        note = (
            f"--init-from: the weights of {request.init_from}; the {config.optimizer} "
            f"optimizer starts afresh ({_fresh_state(config)}), not from the "
            "checkpoint's state"
        )
    claim = claim_new_run_dir(request.out, request.config or DEFAULT_CONFIG, engine)
    return PreparedRun(
        claim.path,
        config,
        params,
        engine,
        dtype,
        corpus,
        request.log_every or DEFAULT_LOG_EVERY,
        _given(request.checkpoint_every, DEFAULT_CHECKPOINT_EVERY),
        claim=claim,
        init_note=note,
    )


def _fresh_state(config: Config) -> str:
    from ptb_lstm.optim import moments

    if config.optimizer == "sgd":
        return "SGD keeps no state"
    return f"t = 0, {', '.join(moments(config))} zero"


def _prepare_resume(request: RunRequest, out_dir: Path, locate) -> PreparedRun:
    given = [
        flag
        for flag, value in (
            ("--config", request.config),
            ("--out", request.out),
            ("--init-from", request.init_from),
            ("--set", request.overrides),
            ("--epochs", request.epochs),
            ("--seed", request.seed),
        )
        if value
    ]
    if given:
        raise UserError(f"--resume continues a run with its own settings; drop {', '.join(given)}")
    if not (out_dir / "model.npz").is_file():
        raise UserError(_nothing_to_resume(out_dir))
    # Claimed before anything is read or rewritten (resume_point trims metrics.jsonl).
    claim = RunClaim.existing(out_dir, "--resume")
    try:
        saved = checkpoint.load(out_dir / "model.npz")
        info = runfiles.read_run_info(out_dir)
        recorded_data = info.get("data_dir")
        data_dir = request.data_dir or (
            recorded_data if recorded_data and _is_folder(recorded_data) else None
        )
        corpus = load_corpus(locate(data_dir), vocab=saved.vocab)
        return PreparedRun(
            out_dir,
            saved.config,
            saved.params,
            request.engine or info.get("engine", saved.engine),
            request.dtype or info.get("dtype", saved.dtype),
            corpus,
            request.log_every or info.get("log_every", DEFAULT_LOG_EVERY),
            _given(
                request.checkpoint_every, info.get("checkpoint_every", DEFAULT_CHECKPOINT_EVERY)
            ),
            resume=resume_point(saved, out_dir),
            claim=claim,
        )
    except OSError as error:
        claim.release()
        if error.errno not in NO_ROOM:
            raise
        raise UserError(no_room_message(error, out_dir, saved.progress.get("step"))) from None
    except BaseException:
        claim.release()
        raise


def _is_folder(path: str) -> bool:
    """Whether ``path`` is a folder; False for one the system cannot even look up (too
    long, a NUL in it), as for one that is gone: the data is then found as without it."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def _nothing_to_resume(out_dir: Path) -> str:
    if out_dir.is_dir() and is_failed_start(out_dir):
        info = runfiles.read_run_info(out_dir)
        return (
            f"--resume {out_dir}: the run stopped before its first checkpoint, so there is "
            f"nothing to resume; start it again with the same --out (it is reused): "
            f"{info.get('command', 'ptb-lstm train --out ' + str(out_dir))}"
        )
    if out_dir.is_file():
        return f"--resume {out_dir} is a file; pass the run's folder: --resume {out_dir.parent}"
    if not out_dir.exists():
        return (
            f"--resume {out_dir} does not exist; pass the folder of a run that "
            "`ptb-lstm train` wrote"
        )
    return (
        f"--resume {out_dir}: no model.npz there; pass the folder of a run that "
        "`ptb-lstm train` wrote"
    )


def _given(value, default):
    return value if value is not None else default


# A run's own start files: what train writes before its first checkpoint.
START_FILES = ("config.json", "metrics.jsonl")


def is_failed_start(folder: Path) -> bool:
    """True when ``folder`` holds only what a start that wrote no checkpoint leaves (a
    ``config.json`` that ptb-lstm train wrote, maybe ``metrics.jsonl``, temporary files), so
    it can be used again."""
    names = {
        p.name for p in folder.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp"))
    }
    if not names:  # only temporary files: config.json itself was never written
        return True
    if "config.json" not in names or not names <= set(START_FILES):
        return False
    try:
        info = runfiles.read_run_info(folder)
    except UserError:
        return False
    return "config" in info and str(info.get("command", "")).startswith("ptb-lstm train")


class RunClaim:
    """A run folder this process writes into: created by this process (``mkdir``, which fails
    when the folder exists) or taken over, and locked (``flock``) until ``release`` or exit,
    so a second training or ``--resume`` of the folder is refused while this one runs."""

    def __init__(self, path: Path, fd: int | None, created: bool) -> None:
        self.path, self._fd, self.created = path, fd, created

    @classmethod
    def existing(cls, path: Path, flag: str) -> RunClaim:
        """Lock the existing folder ``path``; a UserError when another process holds it."""
        return cls(path, _lock(path, flag), created=False)

    def replaced(self) -> bool:
        """True when ``path`` is no longer the folder this claim locked."""
        if self._fd is None:
            return False
        try:
            return not os.path.samestat(os.stat(self.path), os.fstat(self._fd))
        except OSError:
            return True

    def release(self) -> None:
        """Unlock; a folder this process created and left empty (a start that failed before
        writing anything) is removed."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if self.created:
                try:
                    self.path.rmdir()
                except OSError:  # not empty: it holds the run
                    pass

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)  # absent when __init__ did not finish
        if fd is not None:
            os.close(fd)


def _lock(path: Path, flag: str) -> int | None:
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as error:
        raise UserError(f"{flag} {path}: cannot open the folder ({error.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UserError(
            f"{flag} {path}: another ptb-lstm train is writing into this folder "
            "right now; wait for it to finish or choose another folder"
        ) from None
    return fd


def claim_new_run_dir(out: str | None, config_name: str, engine: str) -> RunClaim:
    """Claim the folder of a new run: ``out`` when it is new, empty or a failed start (whose
    start files are removed, nothing else); without ``out``, a new
    ``runs/DATE-TIME-CONFIG-ENGINE`` (with ``-2``, ``-3``, ... when that is taken).

    Creating the folder with ``mkdir`` and locking it is atomic, so of two trainings given one
    folder (or the same default name) exactly one gets it."""
    if out is None:
        stem = Path(config_name).stem
        base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}-{engine}"
        for n in range(1, 10_000):
            path = base if n == 1 else base.with_name(f"{base.name}-{n}")
            if _make_dir(path, "the run folder"):
                return RunClaim(path, _lock(path, "the run folder"), created=True)
        raise UserError(f"every run folder name {base}-N is taken; pass --out")
    path = Path(out)
    created = _make_dir(path, "--out")
    claim = RunClaim(path, _lock(path, "--out"), created)
    if created:
        return claim
    try:
        if claim.replaced():
            raise UserError(
                f"--out {path}: the folder was removed or replaced while it was "
                "claimed; run the command again"
            )
        if any(path.iterdir()):
            if not is_failed_start(path):
                held = "a run" if (path / "model.npz").exists() else "other files"
                hint = f"; continue it with --resume {path}" if held == "a run" else ""
                raise UserError(
                    f"--out {path} already exists and holds {held}; choose a new "
                    f"folder so nothing in it is overwritten{hint}"
                )
            for name in START_FILES:  # a start that failed: begin again
                (path / name).unlink(missing_ok=True)
    except BaseException:
        claim.release()
        raise
    return claim


def _make_dir(path: Path, flag: str) -> bool:
    """Create ``path`` (and its parents); False when it exists as a folder already."""
    try:
        path.mkdir(parents=True)
        return True
    except FileExistsError:
        if path.is_dir():
            return False
        what = "a file" if path.exists() or path.is_symlink() else "not a folder"
        raise UserError(f"{flag} {path} is {what}; choose a new folder") from None
    except NotADirectoryError:
        pass
    except OSError as error:
        raise UserError(f"{flag} {path}: cannot create the folder ({error.strerror})") from None
    blocking = next(
        (parent for parent in reversed(path.parents) if parent.exists() and not parent.is_dir()),
        path.parent,
    )
    raise UserError(
        f"{flag} {path}: {blocking} is a file, not a folder; choose a folder "
        "that is not under a file"
    )


def resume_point(ckpt: checkpoint.Checkpoint, run_dir: Path) -> Resume:
    """The Resume of a run folder's last checkpoint; drops the metrics records written after
    it (those steps are run again) and a partial last line."""
    progress = ckpt.progress
    if progress.get("finished"):
        raise UserError(
            f"the run in {run_dir} has already finished (step "
            f"{progress.get('step', '?')}); start a new one with --init-from to "
            "train further"
        )
    runfiles.resume_progress(progress, ckpt.carried is not None, str(run_dir / "model.npz"))
    if ckpt.config.optimizer != "sgd" and ckpt.optimizer is None:
        raise UserError(
            f"{run_dir / 'model.npz'} holds no {ckpt.config.optimizer} state "
            f"(optimizer_t, optimizer_m_*, ...), so --resume cannot continue its "
            "updates exactly; start a new run from it with --init-from, whose "
            "optimizer starts afresh"
        )
    runfiles.read_run_info(run_dir)  # its engine, dtype and intervals are used on resuming
    step = int(progress["step"])
    records = runfiles.trim_metrics(run_dir / "metrics.jsonl", step)
    epochs = [r for r in records if r.get("event") == "epoch"]
    run_time = float(progress.get("run_time", 0.0))  # absent in checkpoints of older versions
    if progress.get("epoch_finished", False) or int(progress["epoch"]) == 0:
        return Resume(
            int(progress["epoch"]) + 1, step, 0, 0.0, 0.0, None, epochs, run_time, ckpt.optimizer
        )
    return Resume(
        int(progress["epoch"]),
        step,
        int(progress["step_in_epoch"]),
        float(progress["loss_sum"]),
        float(progress.get("epoch_time", 0.0)),
        ckpt.carried,
        epochs,
        run_time,
        ckpt.optimizer,
    )
