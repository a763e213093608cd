"""What a run reports as it goes, by one route: the trainer hands every record to a ``RunLog``,
which appends the metric records to ``metrics.jsonl`` and hands every record, in order, to
each ``Reporter`` (the progress display, TensorBoard).

A record is a dict whose ``"event"`` names it. The ones ``metrics.jsonl`` keeps (``LOGGED``):
``step`` (every ``log_every`` steps), ``epoch``, ``partial_epoch`` (a run stopped by
``--max-steps`` in mid-epoch) and ``test``. The others only drive the display: ``epoch_start``
(epoch, epochs, steps, lr, start), ``progress`` after every training step (done, steps,
perplexity, words_per_second), and ``eval_start`` (split, steps), ``eval_progress`` (split,
done, steps) and ``eval_end`` (split, perplexity) around an evaluation.

Nothing here trains or prints. Readers of finished or running runs (plots, resume) read
``metrics.jsonl`` with ``read_metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path

# Readers of metrics.jsonl use the one checked reader: a partial last line (a crash mid-write)
# is left out, any other line that is not a JSON object is refused with its number.
from ptb_lstm.runfiles import read_metrics  # noqa: F401

LOGGED = frozenset({"step", "epoch", "partial_epoch", "test"})


class Reporter:
    """Receives every record of a run as it happens; the default ignores them."""

    def record(self, record: dict) -> None:
        """One record (see the module's docstring for the events and their fields)."""


class RunLog:
    """The route of a run's records: ``metrics.jsonl`` (one JSON object per line, flushed as
    it is written) for the events in ``LOGGED``, then every reporter, in order."""

    def __init__(self, path: Path, *reporters: Reporter) -> None:
        self.path = path
        self.reporters = reporters
        self._file = open(path, "a", encoding="utf-8")

    def emit(self, record: dict) -> None:
        if record["event"] in LOGGED:
            try:
                self._file.write(json.dumps(record) + "\n")
                self._file.flush()
            except OSError as error:
                error.filename = error.filename or str(self.path)
                raise
        for reporter in self.reporters:
            reporter.record(record)

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:  # what a failed write left in the buffer; that error was raised
            pass
