"""Time training and evaluation steps of an engine on PTB-shaped batches."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

from ptb_lstm.config import Config
from ptb_lstm.data import num_batches
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines import create_engine
from ptb_lstm.params import init_params

PTB_TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}
PTB_VOCAB = 10_000


@dataclass
class BenchResult:
    engine: str
    device: str
    dtype: str
    steps: int
    batch_size: int
    num_steps: int
    hidden_size: int
    train_ms_per_step: float  # median
    eval_ms_per_step: float  # median
    words_per_second: float  # training words per second at the median step time
    full_training_hours: float  # every epoch of the config on PTB, with its evaluations

    def to_dict(self) -> dict:
        return asdict(self)


class StepTimer:
    """An engine with a few random PTB-shaped batches, timing steps on demand (so several
    engines can be timed in interleaved rounds, sharing the machine's noise fairly)."""

    def __init__(
        self,
        engine_name: str,
        config: Config,
        dtype: str = "float32",
        vocab_size: int = PTB_VOCAB,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        rng = np.random.default_rng(seed)
        self.config = config
        self.engine = create_engine(
            engine_name,
            config,
            init_params(config, vocab_size, np.float32),
            dtype=dtype,
            device=device,
        )
        shape = (config.batch_size, config.num_steps)
        self.batches = [
            (rng.integers(0, vocab_size, shape), rng.integers(0, vocab_size, shape))
            for _ in range(8)
        ]
        self.done = 0
        self.learning_rate = 0.1  # small enough that random batches do not blow weights up

    def _run(self, step, count: int) -> list[float]:
        times = []
        for _ in range(count):
            x, y = self.batches[self.done % len(self.batches)]
            self.done += 1
            started = time.perf_counter()
            step(x, y)
            times.append(time.perf_counter() - started)
        return times

    def train(self, count: int) -> list[float]:
        """Times ``count`` training steps, each drawing its dropout masks (when the config has
        dropout) as the trainer does."""
        dtype = np.dtype(self.engine.dtype)

        def step(x, y):
            masks = step_masks(self.config, self.done, dtype=dtype)
            self.engine.train_step(x, y, self.learning_rate, masks)

        return self._run(step, count)

    def eval(self, count: int) -> list[float]:
        return self._run(self.engine.eval_step, count)


def full_training_seconds(config: Config, train_seconds: float, eval_seconds: float) -> float:
    """Every epoch of ``config`` on PTB with a valid pass after each and a test pass at the end."""
    steps = {s: num_batches(n, config.batch_size, config.num_steps) for s, n in PTB_TOKENS.items()}
    return (
        config.epochs * (steps["train"] * train_seconds + steps["valid"] * eval_seconds)
        + steps["test"] * eval_seconds
    )


def bench(
    engine_name: str,
    config: Config,
    steps: int = 50,
    warmup: int = 5,
    dtype: str = "float32",
    vocab_size: int = PTB_VOCAB,
    seed: int = 0,
    device: str = "auto",
) -> BenchResult:
    """Median time of ``steps`` training and ``steps`` evaluation steps after ``warmup``."""
    timer = StepTimer(engine_name, config, dtype, vocab_size, seed, device)
    timer.train(warmup)
    train = statistics.median(timer.train(steps))
    timer.engine.reset_state(config.batch_size)
    timer.eval(warmup)
    evaluation = statistics.median(timer.eval(steps))
    return BenchResult(
        engine_name,
        timer.engine.device,
        dtype,
        steps,
        config.batch_size,
        config.num_steps,
        config.hidden_size,
        1000 * train,
        1000 * evaluation,
        config.batch_size * config.num_steps / train,
        full_training_seconds(config, train, evaluation) / 3600,
    )
