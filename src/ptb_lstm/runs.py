"""Run folders: naming and creating them, and deciding what a training run starts from.

A run is a folder holding ``config.json``, ``metrics.jsonl`` and ``model.npz``. A new run
starts from fresh weights or from a checkpoint (``init_from``); a resumed run continues its own
folder with its own config, engine and dtype. The command line turns flags into a ``RunRequest``;
``prepare`` turns that into everything ``train.train`` needs, or raises a UserError.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ptb_lstm import checkpoint, runfiles
from ptb_lstm.config import PRESETS, Config, apply_overrides, load_config
from ptb_lstm.data import Corpus, load_corpus
from ptb_lstm.errors import UserError
from ptb_lstm.params import DTYPES, Params, check_params, init_params
from ptb_lstm.train import Resume

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
class Run:
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


def prepare(request: RunRequest, locate) -> Run:
    """The run ``request`` describes. ``locate(data_dir_or_None)`` finds PTB (the command line
    passes its own, which draws a download bar).

    Precedence of the config: --resume takes the run's own config and refuses every flag that
    would change it; otherwise the --config file or preset, else the --init-from checkpoint's
    config, else ``small``; then --set overrides, then --epochs and --seed."""
    if request.resume:
        return _prepare_resume(request, locate)
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
    out_dir = new_run_dir(request.out, request.config or DEFAULT_CONFIG, engine)
    corpus = load_corpus(locate(request.data_dir), vocab=start.vocab if start else None)
    if start:
        try:
            check_params(start.params, config, corpus.vocab_size,
                         f"--init-from {request.init_from}")
        except ValueError as error:
            raise UserError(f"{error}; pass the --config the checkpoint was trained with"
                            ) from None
        params = start.params
    else:
        params = init_params(config, corpus.vocab_size, DTYPES[dtype])
    return Run(out_dir, config, params, engine, dtype, corpus,
               request.log_every or DEFAULT_LOG_EVERY,
               _given(request.checkpoint_every, DEFAULT_CHECKPOINT_EVERY))


def _prepare_resume(request: RunRequest, locate) -> Run:
    given = [flag for flag, value in (("--config", request.config), ("--out", request.out),
                                      ("--init-from", request.init_from),
                                      ("--set", request.overrides), ("--epochs", request.epochs),
                                      ("--seed", request.seed))
             if value]
    if given:
        raise UserError(f"--resume continues a run with its own settings; drop "
                        f"{', '.join(given)}")
    out_dir = Path(request.resume)
    if not (out_dir / "model.npz").is_file():
        raise UserError(f"--resume {out_dir}: no model.npz there; pass the folder of a run "
                        "that `ptb-lstm train` wrote")
    saved = checkpoint.load(out_dir / "model.npz")
    info = read_run_info(out_dir)
    recorded_data = info.get("data_dir")
    data_dir = request.data_dir or (recorded_data if recorded_data and Path(recorded_data).is_dir()
                                    else None)
    corpus = load_corpus(locate(data_dir), vocab=saved.vocab)
    return Run(out_dir, saved.config, saved.params,
               request.engine or info.get("engine", saved.engine),
               request.dtype or info.get("dtype", saved.dtype), corpus,
               request.log_every or info.get("log_every", DEFAULT_LOG_EVERY),
               _given(request.checkpoint_every,
                      info.get("checkpoint_every", DEFAULT_CHECKPOINT_EVERY)),
               resume=resume_point(saved, out_dir))


def _given(value, default):
    return value if value is not None else default


def new_run_dir(out: str | None, config_name: str, engine: str) -> Path:
    """``out`` when it is new or an empty folder; without ``out``,
    ``runs/DATE-TIME-CONFIG-ENGINE`` (with ``-2``, ``-3``, ... when that exists)."""
    if out is None:
        stem = Path(config_name).stem
        base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}-{engine}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return path
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"--out {path} already exists and is not an empty folder; "
                        "choose a new folder so no earlier run is overwritten")
    return path


def read_run_info(run_dir: Path) -> dict:
    """A run folder's ``config.json``, or {} when it is missing or unreadable."""
    try:
        info = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def resume_point(ckpt: checkpoint.Checkpoint, run_dir: Path) -> Resume:
    """The Resume of a run folder's last checkpoint; drops the metrics records written after
    it (those steps are run again) and a partial last line."""
    progress = ckpt.progress
    if progress.get("finished"):
        raise UserError(f"the run in {run_dir} has already finished (step "
                        f"{progress.get('step', '?')}); start a new one with --init-from to "
                        "train further")
    runfiles.resume_progress(progress, ckpt.carried is not None, str(run_dir / "model.npz"))
    runfiles.read_run_info(run_dir)  # its engine, dtype and intervals are used on resuming
    step = int(progress["step"])
    metrics_path = run_dir / "metrics.jsonl"
    records = [r for r in runfiles.read_metrics(metrics_path, resuming=True)
               if r.get("step", 0) <= step] if metrics_path.exists() else []
    tmp = metrics_path.with_name(".metrics.jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, metrics_path)
    epochs = [r for r in records if r.get("event") == "epoch"]
    if progress.get("epoch_finished", False) or int(progress["epoch"]) == 0:
        return Resume(int(progress["epoch"]) + 1, step, 0, 0.0, 0.0, None, epochs)
    return Resume(int(progress["epoch"]), step, int(progress["step_in_epoch"]),
                  float(progress["loss_sum"]), float(progress.get("epoch_time", 0.0)),
                  ckpt.carried, epochs)
