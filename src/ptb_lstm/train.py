"""The training loop: the paper's schedule, per-epoch validation, metrics and checkpoints.

The loop is in plain sight here; engines only do the maths of a step, the command line only
handles arguments and files. Progress is reported through a ``Reporter``; nothing here prints.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptb_lstm import checkpoint, dropout
from ptb_lstm.config import Config
from ptb_lstm.data import SPLITS, Corpus, batches, num_batches
from ptb_lstm.engines import Engine
from ptb_lstm.errors import UserError
from ptb_lstm.evaluate import Evaluation, evaluate, perplexity
from ptb_lstm.metrics import MetricsLog, Reporter
from ptb_lstm.runfiles import NO_ROOM, Resume, no_room_message, write_json


class TrainingDiverged(UserError):
    """The loss or the gradient norm stopped being finite."""


@dataclass
class TrainResult:
    out_dir: Path
    steps: int
    epochs: list[dict] = field(default_factory=list)  # one record per finished epoch
    valid: Evaluation | None = None
    test: Evaluation | None = None
    wall_time: float = 0.0  # seconds of this process
    run_time: float = 0.0  # seconds of the run, carried across resumes
    stopped: str | None = None  # "max_steps" or "interrupted" when it ended early


def train(
    config: Config,
    corpus: Corpus,
    engine: Engine,
    out_dir: Path,
    *,
    max_steps: int | None = None,
    log_every: int = 100,
    reporter: Reporter | None = None,
    run_info: dict | None = None,
    checkpoint_every: int | None = None,
    resume: Resume | None = None,
    stop_requested: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``engine`` on ``corpus`` with ``config``'s schedule, writing into ``out_dir``:
    ``config.json``, ``metrics.jsonl`` and ``model.npz``.

    ``model.npz`` is rewritten (atomically) after every epoch, every ``checkpoint_every``
    steps, when training stops early and at the end; mid-epoch it also holds the carried state,
    so that ``resume`` continues exactly where it was written. ``max_steps`` stops after that
    many training steps in all (0: write the initial checkpoint and stop); ``stop_requested``
    is asked after every step (Ctrl-C). Valid perplexity after each epoch, test at the end.

    A write that fails for want of room (a full disk, a quota, a file-size limit, an I/O
    error) is a UserError saying where the last good checkpoint is; a checkpoint is never
    half-written, so it stays intact.
    """
    saved_step = [resume.step if resume else None]  # the step of the last good checkpoint
    try:
        return _train(
            config,
            corpus,
            engine,
            Path(out_dir),
            max_steps,
            log_every,
            reporter,
            run_info,
            checkpoint_every,
            resume,
            stop_requested,
            saved_step,
        )
    except OSError as error:
        if error.errno not in NO_ROOM:
            raise
        raise UserError(no_room_message(error, Path(out_dir), saved_step[0])) from None


def _train(
    config: Config,
    corpus: Corpus,
    engine: Engine,
    out_dir: Path,
    max_steps: int | None,
    log_every: int,
    reporter: Reporter | None,
    run_info: dict | None,
    checkpoint_every: int | None,
    resume: Resume | None,
    stop_requested: Callable[[], bool] | None,
    saved_step: list,
) -> TrainResult:
    reporter = reporter or Reporter()
    # Every split the run reads (valid after each epoch, test at the end) is checked before
    # the first step: a word the vocabulary lacks, or a split too short for one batch, must
    # not cost an epoch.
    for split in SPLITS:
        if num_batches(len(corpus.split(split)), config.batch_size, config.num_steps) == 0:
            raise UserError(
                f"the {split} split ({len(corpus.split(split))} tokens) is too "
                f"short for one batch of {config.batch_size} x {config.num_steps}; "
                "use a smaller batch_size or num_steps"
            )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume is None:
        info = {
            "config": config.to_dict(),
            "engine": engine.name,
            "dtype": engine.dtype,
            "device": engine.device,
            "vocab_size": corpus.vocab_size,
            **(run_info or {}),
        }
        write_json(out_dir / "config.json", info)
    steps_per_epoch = num_batches(len(corpus.train), config.batch_size, config.num_steps)
    model_path = out_dir / "model.npz"
    for stale in out_dir.glob(".*.tmp"):  # left by a process killed in mid-write
        stale.unlink(missing_ok=True)

    def save(progress: dict, carried=None) -> None:
        params = engine.get_params()
        if not all(np.isfinite(value).all() for value in params.values()):
            last = f"; the last good checkpoint is {model_path}" if model_path.exists() else ""
            raise TrainingDiverged(
                f"training diverged: the parameters stopped being finite by "
                f"step {progress['step']} (epoch {progress['epoch']}){last}; "
                "try a smaller learning_rate or max_grad_norm"
            )
        progress = {**progress, "run_time": run_time()}
        checkpoint.save(
            model_path,
            checkpoint.Checkpoint(
                params,
                corpus.vocab,
                config,
                progress,
                engine.name,
                engine.dtype,
                carried=carried,
                optimizer=engine.get_optimizer_state() or None,
            ),
        )
        saved_step[0] = progress["step"]

    result = TrainResult(
        out_dir=out_dir,
        steps=resume.step if resume else 0,
        epochs=list(resume.epochs) if resume else [],
    )
    metrics = MetricsLog(out_dir / "metrics.jsonl", reporter)
    started = time.perf_counter()
    run_before = resume.run_time if resume else 0.0

    def run_time() -> float:
        """Seconds of the run: this process's, plus the run's at the checkpoint it resumed
        from (the time between a stop and its resume, and steps trained again, not counted)."""
        return run_before + time.perf_counter() - started

    if resume is not None and resume.optimizer:
        engine.set_optimizer_state(resume.optimizer)
    words_per_step = config.batch_size * config.num_steps
    engine_dtype = np.dtype(engine.dtype)
    try:
        if max_steps == 0 and resume is None:
            save(
                {
                    "epoch": 0,
                    "step": 0,
                    "step_in_epoch": 0,
                    "learning_rate": config.lr_at_epoch(1),
                    "epoch_finished": True,
                }
            )
            return result
        step = result.steps
        first_epoch = resume.epoch if resume else 1
        for epoch in range(first_epoch, config.epochs + 1):
            lr = config.lr_at_epoch(epoch)
            skip = resume.step_in_epoch if resume and epoch == resume.epoch else 0
            engine.reset_state(config.batch_size)
            loss_sum, done, time_before = 0.0, skip, 0.0
            if skip:
                engine.set_state(resume.carried)
                loss_sum, time_before = resume.loss_sum, resume.epoch_time
            reporter.epoch_start(epoch, config.epochs, steps_per_epoch, lr, skip)
            epoch_started = time.perf_counter()

            stopped = None
            for inputs, targets in itertools.islice(
                batches(corpus.train, config.batch_size, config.num_steps), skip, None
            ):
                # Dropout masks depend on the seed and the step alone (ptb_lstm.dropout),
                # so a resumed run draws the masks an uninterrupted one does.
                masks = dropout.step_masks(config, step, dtype=engine_dtype)
                loss = engine.train_step(inputs, targets, lr, masks)
                step += 1
                done += 1
                if not (math.isfinite(loss) and math.isfinite(engine.last_grad_norm)):
                    last = (
                        f"; the last good checkpoint is {model_path}" if model_path.exists() else ""
                    )
                    raise TrainingDiverged(
                        f"training diverged at step {step} (epoch {epoch}): loss {loss}, "
                        f"gradient norm {engine.last_grad_norm}{last}; try a smaller "
                        "learning_rate or max_grad_norm"
                    )
                loss_sum += loss
                wps = (done - skip) * words_per_step / (time.perf_counter() - epoch_started)
                train_ppl = perplexity(loss_sum, done * config.num_steps)
                reporter.train_step(done, steps_per_epoch, train_ppl, wps)
                if step % log_every == 0:
                    metrics.write(
                        {
                            "event": "step",
                            "step": step,
                            "epoch": epoch,
                            "lr": lr,
                            "loss": loss,
                            "perplexity": train_ppl,
                            "grad_norm": engine.last_grad_norm,
                            "words_per_second": wps,
                            "wall_time": time.perf_counter() - started,
                            "run_time": run_time(),
                        }
                    )
                if max_steps is not None and step >= max_steps:
                    stopped = "max_steps"
                elif stop_requested is not None and stop_requested():
                    stopped = "interrupted"
                mid_epoch = done < steps_per_epoch
                if mid_epoch and (stopped or (checkpoint_every and step % checkpoint_every == 0)):
                    save(
                        {
                            "epoch": epoch,
                            "step": step,
                            "step_in_epoch": done,
                            "learning_rate": lr,
                            "epoch_finished": False,
                            "loss_sum": loss_sum,
                            "epoch_time": time_before + time.perf_counter() - epoch_started,
                        },
                        engine.get_state(),
                    )
                    if stopped:
                        break
            result.steps = step
            epoch_time = time_before + time.perf_counter() - epoch_started
            finished = done == steps_per_epoch
            if stopped == "interrupted" and not finished:
                result.stopped = stopped
                return result
            record = {
                "event": "epoch" if finished else "partial_epoch",
                "step": step,
                "epoch": epoch,
                "lr": lr,
                "steps": done,
                "train_perplexity": perplexity(loss_sum, done * config.num_steps),
                "words_per_second": done * words_per_step / epoch_time,
                "ms_per_step": 1000 * epoch_time / done,
                "epoch_time": epoch_time,
            }
            result.valid = _evaluate(engine, corpus, "valid", config, reporter)
            record["valid_perplexity"] = result.valid.perplexity
            record["wall_time"] = time.perf_counter() - started
            record["run_time"] = run_time()
            metrics.write(record)
            result.epochs.append(record)
            reporter.epoch_end(record)
            if finished:
                save(
                    {
                        "epoch": epoch,
                        "step": step,
                        "step_in_epoch": done,
                        "learning_rate": lr,
                        "epoch_finished": True,
                        "finished": epoch == config.epochs,
                    }
                )
            if stopped:
                result.stopped = stopped
                if stopped == "interrupted":
                    return result
                break
        result.test = _evaluate(engine, corpus, "test", config, reporter)
        result.wall_time, result.run_time = time.perf_counter() - started, run_time()
        metrics.write(
            {
                "event": "test",
                "step": step,
                "test_perplexity": result.test.perplexity,
                "valid_perplexity": result.valid.perplexity if result.valid else None,
                "wall_time": result.wall_time,
                "run_time": result.run_time,
            }
        )
        return result
    finally:
        metrics.close()


def _evaluate(
    engine: Engine, corpus: Corpus, split: str, config: Config, reporter: Reporter
) -> Evaluation:
    ids = corpus.split(split)
    reporter.eval_start(split, num_batches(len(ids), config.batch_size, config.num_steps))
    result = evaluate(engine, ids, config.batch_size, config.num_steps, reporter.eval_step)
    reporter.eval_end(split, result)
    return result
