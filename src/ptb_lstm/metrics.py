"""What a run reports as it goes: the ``Reporter`` interface (progress bars, TensorBoard and
the trainer speak through it) and ``metrics.jsonl``, one JSON record per line.

Nothing here trains or prints: the training loop calls a Reporter, and readers of finished or
running runs (plots, TensorBoard, resume) read ``metrics.jsonl`` with ``read_metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

# Readers of metrics.jsonl use the one checked reader: a partial last line (a crash mid-write)
# is left out, any other line that is not a JSON object is refused with its number.
from ptb_lstm.runfiles import read_metrics  # noqa: F401

if TYPE_CHECKING:
    from ptb_lstm.evaluate import Evaluation


class Reporter:
    """Receives progress; the default does nothing. The command line draws progress bars."""

    def epoch_start(
        self, epoch: int, total_epochs: int, steps: int, learning_rate: float, start: int = 0
    ) -> None: ...

    def train_step(
        self, done: int, steps: int, perplexity: float, words_per_second: float
    ) -> None: ...

    def epoch_end(self, record: dict) -> None: ...

    def eval_start(self, split: str, steps: int) -> None: ...

    def eval_step(self, done: int, steps: int) -> None: ...

    def eval_end(self, split: str, result: Evaluation) -> None: ...

    def record(self, record: dict) -> None:
        """Every record written to metrics.jsonl, as it is written."""


def _to_each(method: str):
    def forward(self: Tee, *args) -> None:
        for reporter in self.reporters:
            getattr(reporter, method)(*args)

    forward.__name__ = method
    return forward


class Tee(Reporter):
    """Hands every report to each of several reporters, in order."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = reporters

    epoch_start = _to_each("epoch_start")
    train_step = _to_each("train_step")
    epoch_end = _to_each("epoch_end")
    eval_start = _to_each("eval_start")
    eval_step = _to_each("eval_step")
    eval_end = _to_each("eval_end")
    record = _to_each("record")


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, flushed as it is written."""

    def __init__(self, path: Path, reporter: Reporter | None = None) -> None:
        self.path = path
        self.reporter = reporter
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as error:
            error.filename = error.filename or str(self.path)
            raise
        if self.reporter is not None:
            self.reporter.record(record)

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:  # what a failed write left in the buffer; that error was raised
            pass
