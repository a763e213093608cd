"""Time training and evaluation steps of an engine on PTB-shaped batches."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

from ptb_lstm.config import Config
from ptb_lstm.data import num_batches
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


def bench(engine_name: str, config: Config, steps: int = 50, warmup: int = 5,
          dtype: str = "float32", vocab_size: int = PTB_VOCAB, seed: int = 0) -> BenchResult:
    """Median time of ``steps`` training and ``steps`` evaluation steps after ``warmup``."""
    rng = np.random.default_rng(seed)
    params = init_params(config, vocab_size, np.float32)
    engine = create_engine(engine_name, config, params, dtype=dtype)
    shape = (config.batch_size, config.num_steps)
    batches = [(rng.integers(0, vocab_size, shape), rng.integers(0, vocab_size, shape))
               for _ in range(8)]
    lr = 0.1  # small enough that random batches do not blow the weights up

    def timed(step) -> list[float]:
        times = []
        for n in range(warmup + steps):
            x, y = batches[n % len(batches)]
            started = time.perf_counter()
            step(x, y)
            if n >= warmup:
                times.append(time.perf_counter() - started)
        return times

    train = statistics.median(timed(lambda x, y: engine.train_step(x, y, lr)))
    engine.reset_state(config.batch_size)
    evaluation = statistics.median(timed(engine.eval_step))
    per_epoch = {s: num_batches(n, config.batch_size, config.num_steps)
                 for s, n in PTB_TOKENS.items()}
    total = config.epochs * (per_epoch["train"] * train + per_epoch["valid"] * evaluation) \
        + per_epoch["test"] * evaluation
    return BenchResult(engine_name, engine.device, dtype, steps, config.batch_size,
                       config.num_steps, config.hidden_size, 1000 * train, 1000 * evaluation,
                       config.batch_size * config.num_steps / train, total / 3600)
