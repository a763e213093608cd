"""The training loop: the paper's schedule, per-epoch validation, metrics and checkpoints.

The loop is in plain sight here: ``train`` runs the epochs, ``Trainer.epoch`` runs an epoch's
steps, each one ``engine.train_step``. Engines only do the maths of a step, the command line
only handles arguments and files. Every record of the run (progress, metrics) goes one way, to
a ``metrics.RunLog``; nothing here prints.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptb_lstm import checkpoint, dropout
from ptb_lstm.config import Config
from ptb_lstm.data import SPLITS, Corpus, batches, num_batches
from ptb_lstm.engines import Engine
from ptb_lstm.errors import UserError
from ptb_lstm.evaluate import Evaluation, evaluate, perplexity
from ptb_lstm.metrics import Reporter, RunLog
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


@dataclass(frozen=True)
class Settings:
    """How a run trains, besides its Config's maths and schedule."""

    max_steps: int | None = None  # stop after this many steps in all (0: initial checkpoint)
    log_every: int = 100  # a "step" record in metrics.jsonl every N steps
    checkpoint_every: int | None = None  # also save mid-epoch every N steps (None, 0: never)
    run_info: dict = field(default_factory=dict)  # written into config.json beside the config


def train(
    config: Config,
    corpus: Corpus,
    engine: Engine,
    out_dir: Path,
    *,
    max_steps: int | None = None,
    log_every: int = 100,
    reporters: Sequence[Reporter] = (),
    run_info: dict | None = None,
    checkpoint_every: int | None = None,
    resume: Resume | None = None,
    stop_requested: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``engine`` on ``corpus`` with ``config``'s schedule, writing into ``out_dir``:
    ``config.json``, ``metrics.jsonl`` and ``model.npz``; each of ``reporters`` receives every
    record of the run (``ptb_lstm.metrics``: progress, then the metrics).

    ``model.npz`` is rewritten (atomically) after every epoch, every ``checkpoint_every``
    steps, when training stops early and at the end; mid-epoch it also holds the carried state,
    so that ``resume`` continues exactly where it was written. ``max_steps`` stops after that
    many training steps in all (0: write the initial checkpoint and stop); ``stop_requested``
    is asked after every step (Ctrl-C). Valid perplexity after each epoch, test at the end.

    A write that fails for want of room (a full disk, a quota, a file-size limit, an I/O
    error) is a UserError saying where the last good checkpoint is; a checkpoint is never
    half-written, so it stays intact.
    """
    settings = Settings(max_steps, log_every, checkpoint_every, run_info or {})
    trainer = Trainer(config, corpus, engine, Path(out_dir), settings, resume)
    try:
        with trainer.open(reporters):
            if max_steps == 0 and resume is None:
                trainer.save_initial()
                return trainer.result
            for epoch in range(resume.epoch if resume else 1, config.epochs + 1):
                stopped = trainer.epoch(epoch, stop_requested)
                if stopped:
                    trainer.result.stopped = stopped
                    if stopped == "interrupted":
                        return trainer.result
                    break
            return trainer.test()
    except OSError as error:
        if error.errno not in NO_ROOM:
            raise
        raise UserError(no_room_message(error, trainer.out_dir, trainer.saved_step)) from None


@dataclass
class EpochProgress:
    """Where the running epoch stands; a resumed epoch starts with its first ``skip`` steps
    done (their loss and time from the checkpoint)."""

    number: int
    learning_rate: float
    steps: int  # steps in a whole epoch
    skip: int = 0
    loss_sum: float = 0.0  # of the steps done
    time_before: float = 0.0  # seconds of the skipped steps
    started: float = field(default_factory=time.perf_counter)
    done: int = field(init=False)  # steps of this epoch done, skipped ones included

    def __post_init__(self) -> None:
        self.done = self.skip

    def seconds(self) -> float:
        return self.time_before + time.perf_counter() - self.started


class Trainer:
    """One training run's state between steps: the engine, the step count, the clock, the
    last good checkpoint and the route of its records."""

    def __init__(
        self,
        config: Config,
        corpus: Corpus,
        engine: Engine,
        out_dir: Path,
        settings: Settings,
        resume: Resume | None,
    ) -> None:
        self.config, self.corpus, self.engine = config, corpus, engine
        self.out_dir, self.settings, self.resume = out_dir, settings, resume
        self.model_path = out_dir / "model.npz"
        self.steps_per_epoch = num_batches(len(corpus.train), config.batch_size, config.num_steps)
        self.step = resume.step if resume else 0
        self.saved_step = resume.step if resume else None  # of the last good checkpoint
        self.result = TrainResult(out_dir, self.step, list(resume.epochs) if resume else [])
        self.started = time.perf_counter()
        self.run_before = resume.run_time if resume else 0.0
        self.log: RunLog | None = None

    def run_time(self) -> float:
        """Seconds of the run: this process's, plus the run's at the checkpoint it resumed
        from (the time between a stop and its resume, and steps trained again, not counted)."""
        return self.run_before + time.perf_counter() - self.started

    def emit(self, record: dict) -> None:
        assert self.log is not None, "Trainer.emit before Trainer.open"
        self.log.emit(record)

    @contextlib.contextmanager
    def open(self, reporters: Sequence[Reporter]) -> Iterator[Trainer]:
        """Check the splits, create the run folder's start files and open metrics.jsonl for
        the records; closed again on leaving."""
        config, out_dir = self.config, self.out_dir
        # Every split the run reads (valid after each epoch, test at the end) is checked before
        # the first step: a split too short for one batch must not cost an epoch.
        for split in SPLITS:
            tokens = len(self.corpus.split(split))
            if num_batches(tokens, config.batch_size, config.num_steps) == 0:
                raise UserError(
                    f"the {split} split ({tokens} tokens) is too short for one batch of "
                    f"{config.batch_size} x {config.num_steps}; use a smaller batch_size or "
                    "num_steps"
                )
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.resume is None:
            write_json(out_dir / "config.json", self._run_info())
        for stale in out_dir.glob(".*.tmp"):  # left by a process killed in mid-write
            stale.unlink(missing_ok=True)
        if self.resume is not None and self.resume.optimizer:
            self.engine.set_optimizer_state(self.resume.optimizer)
        self.log = RunLog(out_dir / "metrics.jsonl", *reporters)
        self.started = time.perf_counter()
        try:
            yield self
        finally:
            self.log.close()

    def _run_info(self) -> dict:
        engine = self.engine
        return {
            "config": self.config.to_dict(),
            "engine": engine.name,
            "dtype": engine.dtype,
            "device": engine.device,
            "vocab_size": self.corpus.vocab_size,
            **self.settings.run_info,
        }

    def epoch(self, number: int, stop_requested: Callable[[], bool] | None) -> str | None:
        """Train epoch ``number`` (the rest of it, when resumed in mid-epoch), then validate;
        returns "max_steps" or "interrupted" when the run stops early, else None."""
        config, engine = self.config, self.engine
        epoch = self._begin_epoch(number)
        words_per_step = config.batch_size * config.num_steps
        dtype = np.dtype(engine.dtype)
        train_batches = batches(self.corpus.train, config.batch_size, config.num_steps)
        stopped = None
        for inputs, targets in itertools.islice(train_batches, epoch.skip, None):
            # Dropout masks depend on the seed and the step alone (ptb_lstm.dropout), so a
            # resumed run draws the masks an uninterrupted one does.
            masks = dropout.step_masks(config, self.step, dtype=dtype)
            loss = engine.train_step(inputs, targets, epoch.learning_rate, masks)
            self.step += 1
            epoch.done += 1
            self._check_finite(loss, epoch.number)
            epoch.loss_sum += loss
            elapsed = time.perf_counter() - epoch.started
            wps = (epoch.done - epoch.skip) * words_per_step / elapsed
            self._report_step(epoch, loss, wps)
            stopped = self._stop_reason(stop_requested)
            mid_epoch = epoch.done < self.steps_per_epoch
            every = self.settings.checkpoint_every
            if mid_epoch and (stopped or (every and self.step % every == 0)):
                self._save_mid_epoch(epoch)
                if stopped:
                    break
        self.result.steps = self.step
        finished = epoch.done == self.steps_per_epoch
        if stopped == "interrupted" and not finished:
            return stopped
        self._end_epoch(epoch, finished)
        return stopped

    def _begin_epoch(self, number: int) -> EpochProgress:
        """The carried state zeroed, or the checkpoint's when resuming in mid-epoch."""
        resume, steps = self.resume, self.steps_per_epoch
        lr = self.config.lr_at_epoch(number)
        self.engine.reset_state(self.config.batch_size)
        if resume is not None and number == resume.epoch and resume.step_in_epoch:
            assert resume.carried is not None, "a mid-epoch Resume holds the carried state"
            self.engine.set_state(resume.carried)
            skip = resume.step_in_epoch
            epoch = EpochProgress(number, lr, steps, skip, resume.loss_sum, resume.epoch_time)
        else:
            epoch = EpochProgress(number, lr, steps)
        self.emit(
            {
                "event": "epoch_start",
                "epoch": number,
                "epochs": self.config.epochs,
                "steps": steps,
                "lr": lr,
                "start": epoch.skip,
            }
        )
        epoch.started = time.perf_counter()
        return epoch

    def _check_finite(self, loss: float, epoch: int) -> None:
        grad_norm = self.engine.last_grad_norm
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            raise TrainingDiverged(
                f"training diverged at step {self.step} (epoch {epoch}): loss {loss}, "
                f"gradient norm {grad_norm}{self._last_good()}; try a smaller "
                "learning_rate or max_grad_norm"
            )

    def _last_good(self) -> str:
        return (
            f"; the last good checkpoint is {self.model_path}" if self.model_path.exists() else ""
        )

    def _report_step(self, epoch: EpochProgress, loss: float, words_per_second: float) -> None:
        """The progress record of every step, and every ``log_every`` steps a step record."""
        train_ppl = perplexity(epoch.loss_sum, epoch.done * self.config.num_steps)
        self.emit(
            {
                "event": "progress",
                "done": epoch.done,
                "steps": epoch.steps,
                "perplexity": train_ppl,
                "words_per_second": words_per_second,
            }
        )
        if self.step % self.settings.log_every == 0:
            self.emit(
                {
                    "event": "step",
                    "step": self.step,
                    "epoch": epoch.number,
                    "lr": epoch.learning_rate,
                    "loss": loss,
                    "perplexity": train_ppl,
                    "grad_norm": self.engine.last_grad_norm,
                    "words_per_second": words_per_second,
                    "wall_time": time.perf_counter() - self.started,
                    "run_time": self.run_time(),
                }
            )

    def _stop_reason(self, stop_requested: Callable[[], bool] | None) -> str | None:
        max_steps = self.settings.max_steps
        if max_steps is not None and self.step >= max_steps:
            return "max_steps"
        if stop_requested is not None and stop_requested():
            return "interrupted"
        return None

    def _end_epoch(self, epoch: EpochProgress, finished: bool) -> None:
        """Validate, write the epoch's record and, after a whole epoch, the checkpoint."""
        seconds = epoch.seconds()
        done = epoch.done
        record = {
            "event": "epoch" if finished else "partial_epoch",
            "step": self.step,
            "epoch": epoch.number,
            "lr": epoch.learning_rate,
            "steps": done,
            "train_perplexity": perplexity(epoch.loss_sum, done * self.config.num_steps),
            "words_per_second": done * self.config.batch_size * self.config.num_steps / seconds,
            "ms_per_step": 1000 * seconds / done,
            "epoch_time": seconds,
        }
        self.result.valid = self._evaluate("valid")
        record["valid_perplexity"] = self.result.valid.perplexity
        record["wall_time"] = time.perf_counter() - self.started
        record["run_time"] = self.run_time()
        self.emit(record)
        self.result.epochs.append(record)
        if finished:
            self.save(
                {
                    "epoch": epoch.number,
                    "step": self.step,
                    "step_in_epoch": done,
                    "learning_rate": epoch.learning_rate,
                    "epoch_finished": True,
                    "finished": epoch.number == self.config.epochs,
                }
            )

    def test(self) -> TrainResult:
        """Test perplexity at the end of the run, its record written; the run's result."""
        result = self.result
        result.test = self._evaluate("test")
        result.wall_time, result.run_time = time.perf_counter() - self.started, self.run_time()
        self.emit(
            {
                "event": "test",
                "step": self.step,
                "test_perplexity": result.test.perplexity,
                "valid_perplexity": result.valid.perplexity if result.valid else None,
                "wall_time": result.wall_time,
                "run_time": result.run_time,
            }
        )
        return result

    def _evaluate(self, split: str) -> Evaluation:
        ids, config = self.corpus.split(split), self.config
        steps = num_batches(len(ids), config.batch_size, config.num_steps)
        self.emit({"event": "eval_start", "split": split, "steps": steps})

        def on_step(done: int, steps: int) -> None:
            self.emit({"event": "eval_progress", "split": split, "done": done, "steps": steps})

        result = evaluate(self.engine, ids, config.batch_size, config.num_steps, on_step)
        self.emit({"event": "eval_end", "split": split, "perplexity": result.perplexity})
        return result

    def save_initial(self) -> None:
        """``max_steps == 0``: the initial weights as the checkpoint of epoch 0."""
        self.save(
            {
                "epoch": 0,
                "step": 0,
                "step_in_epoch": 0,
                "learning_rate": self.config.lr_at_epoch(1),
                "epoch_finished": True,
            }
        )

    def _save_mid_epoch(self, epoch: EpochProgress) -> None:
        progress = {
            "epoch": epoch.number,
            "step": self.step,
            "step_in_epoch": epoch.done,
            "learning_rate": epoch.learning_rate,
            "epoch_finished": False,
            "loss_sum": epoch.loss_sum,
            "epoch_time": epoch.seconds(),
        }
        self.save(progress, self.engine.get_state())

    def save(self, progress: dict, carried: list | None = None) -> None:
        """Write model.npz (atomically) with ``progress`` and, mid-epoch, the carried state."""
        params = self.engine.get_params()
        if not all(np.isfinite(value).all() for value in params.values()):
            raise TrainingDiverged(
                f"training diverged: the parameters stopped being finite by "
                f"step {progress['step']} (epoch {progress['epoch']}){self._last_good()}; "
                "try a smaller learning_rate or max_grad_norm"
            )
        progress = {**progress, "run_time": self.run_time()}
        saved = checkpoint.Checkpoint(
            params,
            self.corpus.vocab,
            self.config,
            progress,
            self.engine.name,
            self.engine.dtype,
            carried=carried,
            optimizer=self.engine.get_optimizer_state() or None,
        )
        checkpoint.save(self.model_path, saved)
        self.saved_step = progress["step"]
