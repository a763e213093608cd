"""Time training and evaluation steps of an engine on PTB-shaped batches, and the floors a
step is held against: its matrix products at the machine's square-SGEMM rate (the compute
floor), and the same products timed at the shapes an ideal schedule uses (the shape floor)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple

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


# -- the floors ----------------------------------------------------------------------------


class Product(NamedTuple):
    """[m, k] @ [k, n], ``times`` times in a step: times > 1 means once per time step, in
    sequence, because each needs the one before (the recurrence)."""

    what: str
    m: int
    k: int
    n: int
    times: int = 1

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n * self.times


def step_products(config: Config, vocab_size: int = PTB_VOCAB) -> list[Product]:
    """The matrix products of one training step as an ideal schedule runs them: batched over
    all N = batch_size * num_steps rows where the maths allows (the input projections, the
    softmax and its gradients, the input and weight gradients), one per time step where it does
    not (h(t-1) @ recurrent_kernel forward and d z @ recurrent_kernel.T backward)."""
    b, t, h, v = config.batch_size, config.num_steps, config.hidden_size, vocab_size
    n, g = b * t, 4 * h
    products = [
        Product("softmax: logits", n, h, v),
        Product("softmax: d top", n, v, h),
        Product("softmax: d kernel", h, n, v),
    ]
    for layer in range(config.num_layers):
        products += [
            Product(f"layer {layer}: input projection", n, h, g),
            Product(f"layer {layer}: h(t-1) @ recurrent kernel", b, h, g, t),
            Product(f"layer {layer}: d h(t-1)", b, g, h, t),
            Product(f"layer {layer}: d input", n, g, h),
            Product(f"layer {layer}: d kernel", h, n, g),
            Product(f"layer {layer}: d recurrent kernel", h, n, g),
        ]
    return products


def step_flops(config: Config, vocab_size: int = PTB_VOCAB) -> float:
    """Floating-point operations (2 per multiply-add) of one training step's matrix products."""
    return sum(p.flops for p in step_products(config, vocab_size))


def _best_seconds(run: Callable[[], object], repeats: int, budget: float = 0.2) -> float:
    """The fastest of at least ``repeats`` timed calls of ``run``, after one untimed call;
    quick calls are repeated until ``budget`` seconds have gone (at most 100 times), so that
    one late wake-up of a BLAS thread does not set the floor."""
    run()
    best, spent, calls = float("inf"), 0.0, 0
    while calls < repeats or (spent < budget and calls < 100):
        started = time.perf_counter()
        run()
        took = time.perf_counter() - started
        best, spent, calls = min(best, took), spent + took, calls + 1
    return best


def sgemm_gflops(size: int = 2048, repeats: int = 7) -> float:
    """The best float32 rate of NumPy's BLAS, with its own threads, on square products."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    return 2 * size**3 / _best_seconds(lambda: np.matmul(a, b, out=out), repeats) / 1e9


def product_operands(product: Product) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a`` [m, k], ``b`` [k, n] and ``out`` [m, n] of ``product``: float32, C-ordered."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((product.m, product.k), dtype=np.float32)
    b = rng.standard_normal((product.k, product.n), dtype=np.float32)
    b *= 1.0 / np.sqrt(product.k)  # in place: b / np.float64(...) would be a float64 array
    return a, b, np.empty((product.m, product.n), np.float32)


def product_seconds(product: Product, repeats: int = 3) -> float:
    """The fastest time of ``product`` in float32: ``times`` calls one after the other, as a
    loop over time steps makes them, in whichever operand order BLAS runs faster: a @ b on
    C-ordered operands, or the same product transposed, (b^T a^T)^T, with C-ordered copies of
    b^T and a^T. (For the per-time-step products the second is the weights as the left
    operand, which OpenBLAS runs faster at 20 rows.)"""
    a, b, out = product_operands(product)
    a_t, b_t = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
    out_t = np.empty((product.n, product.m), np.float32)

    def plain() -> None:
        for _ in range(product.times):
            np.matmul(a, b, out=out)

    def transposed() -> None:
        for _ in range(product.times):
            np.matmul(b_t, a_t, out=out_t)

    return min(_best_seconds(plain, repeats), _best_seconds(transposed, repeats))


def memory_gbytes_per_second(megabytes: int = 256, repeats: int = 5) -> float:
    """The best rate of copying a float32 array of ``megabytes`` (bytes read plus written)."""
    source = np.ones(megabytes * 2**20 // 4, np.float32)
    target = np.empty_like(source)
    seconds = _best_seconds(lambda: np.copyto(target, source), repeats)
    return 2 * source.nbytes / seconds / 1e9
