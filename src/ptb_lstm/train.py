"""The training loop: the paper's schedule, per-epoch validation, metrics and checkpoints.

The loop is in plain sight here; engines only do the maths of a step, the command line only
handles arguments and files. Progress is reported through a ``Reporter``; nothing here prints.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ptb_lstm import checkpoint
from ptb_lstm.config import Config
from ptb_lstm.data import Corpus, batches, num_batches
from ptb_lstm.engines import Engine
from ptb_lstm.errors import UserError
from ptb_lstm.evaluate import Evaluation, evaluate, perplexity


class Reporter:
    """Receives progress; the default does nothing. The command line draws progress bars."""

    def epoch_start(self, epoch: int, total_epochs: int, steps: int, learning_rate: float
                    ) -> None: ...

    def train_step(self, done: int, steps: int, perplexity: float, words_per_second: float
                   ) -> None: ...

    def epoch_end(self, record: dict) -> None: ...

    def eval_start(self, split: str, steps: int) -> None: ...

    def eval_step(self, done: int, steps: int) -> None: ...

    def eval_end(self, split: str, result: Evaluation) -> None: ...


class TrainingDiverged(UserError):
    """The loss or the gradient norm stopped being finite."""


@dataclass
class TrainResult:
    out_dir: Path
    steps: int
    epochs: list[dict] = field(default_factory=list)  # one record per finished epoch
    valid: Evaluation | None = None
    test: Evaluation | None = None
    wall_time: float = 0.0


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, flushed as it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_metrics(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl``; a partial last line (a crash mid-write) is ignored."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def write_json_atomic(path: Path, value: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def train(config: Config, corpus: Corpus, engine: Engine, out_dir: Path, *,
          max_steps: int | None = None, log_every: int = 100, reporter: Reporter | None = None,
          run_info: dict | None = None) -> TrainResult:
    """Train ``engine`` on ``corpus`` with ``config``'s schedule, writing into ``out_dir``:
    ``config.json``, ``metrics.jsonl`` and ``model.npz`` (after every epoch and at the end).

    ``max_steps`` stops after that many training steps in all (0: write the initial
    checkpoint and stop). Valid perplexity after each epoch, test perplexity at the end.
    """
    reporter = reporter or Reporter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = {"config": config.to_dict(), "engine": engine.name, "dtype": engine.dtype,
            "device": engine.device, "vocab_size": corpus.vocab_size, **(run_info or {})}
    write_json_atomic(out_dir / "config.json", info)
    steps_per_epoch = num_batches(len(corpus.train), config.batch_size, config.num_steps)
    if steps_per_epoch == 0:
        raise UserError(f"the training split ({len(corpus.train)} tokens) is too short for one "
                        f"batch of {config.batch_size} x {config.num_steps}; use a smaller "
                        "batch_size or num_steps")
    model_path = out_dir / "model.npz"

    def save(progress: dict) -> None:
        checkpoint.save(model_path, checkpoint.Checkpoint(
            engine.get_params(), corpus.vocab, config, progress, engine.name, engine.dtype))

    result = TrainResult(out_dir=out_dir, steps=0)
    metrics = MetricsLog(out_dir / "metrics.jsonl")
    started = time.perf_counter()
    try:
        if max_steps == 0:
            save({"epoch": 0, "step": 0, "learning_rate": config.lr_at_epoch(1)})
            return result
        step = 0
        for epoch in range(1, config.epochs + 1):
            lr = config.lr_at_epoch(epoch)
            reporter.epoch_start(epoch, config.epochs, steps_per_epoch, lr)
            engine.reset_state(config.batch_size)
            epoch_started = time.perf_counter()
            loss_sum, done = 0.0, 0
            words_per_step = config.batch_size * config.num_steps
            for inputs, targets in batches(corpus.train, config.batch_size, config.num_steps):
                loss = engine.train_step(inputs, targets, lr)
                step += 1
                done += 1
                if not (math.isfinite(loss) and math.isfinite(engine.last_grad_norm)):
                    last = f"; the last good checkpoint is {model_path}" if model_path.exists() \
                        else ""
                    raise TrainingDiverged(
                        f"training diverged at step {step} (epoch {epoch}): loss {loss}, "
                        f"gradient norm {engine.last_grad_norm}{last}; try a smaller "
                        "learning_rate or max_grad_norm")
                loss_sum += loss
                elapsed = time.perf_counter() - epoch_started
                wps = done * words_per_step / elapsed
                train_ppl = perplexity(loss_sum, done * config.num_steps)
                reporter.train_step(done, steps_per_epoch, train_ppl, wps)
                if step % log_every == 0:
                    metrics.write({"event": "step", "step": step, "epoch": epoch, "lr": lr,
                                   "loss": loss, "perplexity": train_ppl,
                                   "grad_norm": engine.last_grad_norm,
                                   "words_per_second": wps,
                                   "wall_time": time.perf_counter() - started})
                if max_steps is not None and step >= max_steps:
                    break
            epoch_time = time.perf_counter() - epoch_started
            result.steps = step
            finished = done == steps_per_epoch
            record = {"event": "epoch" if finished else "partial_epoch", "step": step,
                      "epoch": epoch, "lr": lr, "steps": done,
                      "train_perplexity": perplexity(loss_sum, done * config.num_steps),
                      "words_per_second": done * words_per_step / epoch_time,
                      "ms_per_step": 1000 * epoch_time / done, "epoch_time": epoch_time}
            result.valid = _evaluate(engine, corpus, "valid", config, reporter)
            record["valid_perplexity"] = result.valid.perplexity
            record["wall_time"] = time.perf_counter() - started
            metrics.write(record)
            result.epochs.append(record)
            reporter.epoch_end(record)
            save({"epoch": epoch, "step": step, "learning_rate": lr,
                  "epoch_finished": finished})
            if not finished:
                break
        result.test = _evaluate(engine, corpus, "test", config, reporter)
        result.wall_time = time.perf_counter() - started
        metrics.write({"event": "test", "step": step, "test_perplexity": result.test.perplexity,
                       "valid_perplexity": result.valid.perplexity if result.valid else None,
                       "wall_time": result.wall_time})
        return result
    finally:
        metrics.close()


def _evaluate(engine: Engine, corpus: Corpus, split: str, config: Config, reporter: Reporter
              ) -> Evaluation:
    ids = corpus.split(split)
    reporter.eval_start(split, num_batches(len(ids), config.batch_size, config.num_steps))
    result = evaluate(engine, ids, config.batch_size, config.num_steps, reporter.eval_step)
    reporter.eval_end(split, result)
    return result

