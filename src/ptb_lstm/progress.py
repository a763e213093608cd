"""Progress for people: bars with ETA on a terminal, plain periodic lines in a log file."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from ptb_lstm.metrics import Reporter


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:d}:{secs:02d}"


class ConsoleReporter(Reporter):
    """tqdm bars on stderr when it is a terminal; otherwise a line every tenth of an epoch
    (so ``nohup ... > log`` stays readable). Epoch results go to stdout."""

    def __init__(self, stream=None, interactive: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.bar: tqdm | None = None
        self.epoch = 0
        self.total_epochs = 0
        self.steps = 0
        self.started = 0.0
        self.next_line = 0
        self.start = 0

    def _bar(self, total: int, desc: str, leave: bool) -> tqdm | None:
        if not self.interactive:
            return None
        return tqdm(
            total=total,
            desc=desc,
            unit="step",
            leave=leave,
            file=self.stream,
            dynamic_ncols=True,
            mininterval=0.5,
        )

    def record(self, record: dict) -> None:
        match record["event"]:
            case "epoch_start":
                self._epoch_start(record)
            case "progress":
                self._progress(record)
            case "epoch" | "partial_epoch":
                self._epoch_end(record)
            case "eval_start":
                self.bar = self._bar(record["steps"], f"evaluating {record['split']}", False)
            case "eval_progress":
                if self.bar is not None:
                    self.bar.update(1)
            case "eval_end":
                self._close_bar()

    def _epoch_start(self, record: dict) -> None:
        self.epoch, self.total_epochs = record["epoch"], record["epochs"]
        self.steps, self.start = record["steps"], record["start"]
        self.started = time.perf_counter()
        self.next_line = self.start + max(1, self.steps // 10)
        desc = f"epoch {self.epoch}/{self.total_epochs} lr {record['lr']:.4g}"
        self.bar = self._bar(self.steps, desc, True)
        if self.bar is not None:
            self.bar.update(self.start)
        else:
            resumed = f", resuming after step {self.start}" if self.start else ""
            print(
                f"epoch {self.epoch}/{self.total_epochs}: {self.steps} steps at learning rate "
                f"{record['lr']:.4g}{resumed}",
                file=self.stream,
                flush=True,
            )

    def _progress(self, record: dict) -> None:
        done, steps = record["done"], record["steps"]
        perplexity, words_per_second = record["perplexity"], record["words_per_second"]
        if self.bar is not None:
            self.bar.update(1)
            if done % 10 == 0 or done == steps:
                self.bar.set_postfix_str(
                    f"ppl {perplexity:.2f}, {words_per_second:,.0f} words/s", refresh=False
                )
        elif done >= self.next_line or done == steps:
            self.next_line += max(1, steps // 10)
            elapsed = time.perf_counter() - self.started
            per_step = elapsed / (done - self.start)
            eta = per_step * (steps - done)
            print(
                f"  epoch {self.epoch} step {done}/{steps}: train ppl {perplexity:.2f}, "
                f"{words_per_second:,.0f} words/s, {1000 * per_step:.1f} ms/step, "
                f"elapsed {_duration(elapsed)}, ETA {_duration(eta)}",
                file=self.stream,
                flush=True,
            )

    def _epoch_end(self, record: dict) -> None:
        self._close_bar()
        partial = (
            ""
            if record["event"] == "epoch"
            else f" (stopped after {record['steps']} of {self.steps} steps)"
        )
        print(
            f"epoch {record['epoch']}{partial}: lr {record['lr']:.4g}  "
            f"train ppl {record['train_perplexity']:.2f}  "
            f"valid ppl {record['valid_perplexity']:.2f}  "
            f"({record['ms_per_step']:.1f} ms/step, {record['words_per_second']:,.0f} words/s, "
            f"{_duration(record['epoch_time'])})",
            flush=True,
        )

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def summary_table(epochs: list[dict]) -> str:
    """The finished run as a small fixed-width table."""
    lines = [
        f"{'epoch':>5}  {'lr':>8}  {'train ppl':>10}  {'valid ppl':>10}  "
        f"{'ms/step':>8}  {'time':>8}"
    ]
    for r in epochs:
        lines.append(
            f"{r['epoch']:>5}  {r['lr']:>8.4g}  {r['train_perplexity']:>10.2f}  "
            f"{r['valid_perplexity']:>10.2f}  {r['ms_per_step']:>8.1f}  "
            f"{_duration(r['epoch_time']):>8}"
        )
    return "\n".join(lines)
