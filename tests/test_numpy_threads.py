"""The NumPy engine's helper threads (engines/_blas_threads.py): the threaded step computes
what the serial one does, every time the same, and leaves BLAS as it found it."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from ptb_lstm.config import PRESETS
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines import _blas_threads, numpy_engine
from ptb_lstm.engines._blas_threads import Work
from ptb_lstm.engines.numpy_engine import NumpyEngine
from ptb_lstm.gradcheck import TOLERANCE, gradcheck
from ptb_lstm.params import init_params

VOCAB = 23

# The helper threads exist only where threadpoolctl can hold NumPy's OpenBLAS (pthreads) to one
# thread; elsewhere every step is serial and these tests have nothing to check.
needs_openblas = pytest.mark.skipif(
    _blas_threads._numpy_blas() is None,
    reason="NumPy's BLAS is not a pthreads OpenBLAS that threadpoolctl can limit",
)


@pytest.fixture
def small_blocks(monkeypatch):
    """Task sizes small enough that the tiny model's step splits into many tasks: 2-step
    forward blocks, softmax tasks of 8 rows, weight-gradient blocks of 4 columns."""
    monkeypatch.setattr(numpy_engine, "_BLOCK_STEPS", 2)
    monkeypatch.setattr(numpy_engine, "_SOFTMAX_ROWS", 8)
    monkeypatch.setattr(numpy_engine, "_BLOCK_COLUMNS", 4)


def make_engine(dtype, dropout=0.3):
    config = PRESETS["tiny"].replace(num_steps=7, batch_size=4, dropout=dropout, seed=5)
    return NumpyEngine(config, init_params(config, VOCAB, np.float64, seed=5), dtype=dtype)


def batches(count=4):
    rng = np.random.default_rng(11)
    return [(rng.integers(0, VOCAB, (4, 7)), rng.integers(0, VOCAB, (4, 7))) for _ in range(count)]


def train(engine, blas_threads):
    """Losses and final parameters of a few steps, with BLAS at ``blas_threads``."""
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        with engine._threads.split() as work:  # the step really runs as asked
            assert work.helpers == blas_threads - 1
        losses = [
            engine.train_step(x, y, 0.5, step_masks(engine.config, step, dtype=engine.np_dtype))
            for step, (x, y) in enumerate(batches())
        ]
        losses.append(engine.eval_step(*batches(1)[0]))
    return losses, engine.get_params()


@needs_openblas
@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 2e-5)])
def test_threaded_and_serial_training_agree(small_blocks, dtype, tolerance):
    serial_losses, serial_params = train(make_engine(dtype), blas_threads=1)
    threaded_losses, threaded_params = train(make_engine(dtype), blas_threads=2)
    np.testing.assert_allclose(threaded_losses, serial_losses, rtol=tolerance)
    for name, value in serial_params.items():
        np.testing.assert_allclose(
            threaded_params[name], value, rtol=tolerance, atol=tolerance, err_msg=name
        )


@needs_openblas
def test_threaded_training_is_identical_from_run_to_run(small_blocks):
    """Whichever thread happens to run a task, the numbers may not change: sums over tasks
    are added in a fixed order."""
    first = train(make_engine("float32"), blas_threads=2)
    second = train(make_engine("float32"), blas_threads=2)
    assert first[0] == second[0]
    for name, value in first[1].items():
        assert np.array_equal(second[1][name], value), name


@needs_openblas
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_threaded_gradients_match_finite_differences(small_blocks, dropout):
    with threadpool_limits(limits=2, user_api="blas"):
        rows = gradcheck(seed=4, dropout=dropout, vocab_size=VOCAB, num_steps=6)
    assert max(r.error for r in rows) <= TOLERANCE, rows


@needs_openblas
def test_blas_thread_count_is_restored_after_steps_and_errors(small_blocks):
    engine = make_engine("float32")
    x, y = batches(1)[0]
    with threadpool_limits(limits=2, user_api="blas"):
        library = _blas_threads._numpy_blas()
        engine.train_step(x, y, learning_rate=0.5)
        assert library.num_threads == 2
        with pytest.raises(ValueError):
            engine.train_step(x, y[:, :3], learning_rate=0.5)  # targets of the wrong shape
        assert library.num_threads == 2
        engine.eval_step(x, y)
        assert library.num_threads == 2


@needs_openblas
def test_work_runs_every_task_once_on_both_threads_and_reraises():
    blas = _blas_threads.BlasThreads()
    ran, threads = [], set()

    def task(i):
        def run():
            ran.append(i)
            threads.add(threading.get_ident())
            np.linalg.norm(np.ones((300, 300), np.float32) @ np.ones((300, 300), np.float32))

        return run

    with threadpool_limits(limits=2, user_api="blas"), blas.split() as work:
        assert work.helpers == 1
        tasks = [work.put(task(i)) for i in range(40)]
        tasks[7].wait()
        work.drain()
    assert sorted(ran) == list(range(40))
    assert len(threads) == 2

    def fails():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with threadpool_limits(limits=2, user_api="blas"), blas.split() as work:
            work.put(fails)
            work.put(task(99))


def test_without_helpers_tasks_run_at_once_in_order():
    work = Work(None, 0)
    order = []
    work.put(lambda: order.append(1))
    work.put(lambda: order.append(2), first=True)  # nothing to jump ahead of
    assert order == [1, 2]
    work.drain()
    work.close()


@needs_openblas
def test_large_hidden_sizes_run_serially_on_blas_threads():
    """Above _THREADED_HIDDEN_MAX the products run whole on BLAS's own threads."""
    config = PRESETS["tiny"].replace(hidden_size=numpy_engine._THREADED_HIDDEN_MAX + 1)
    large = NumpyEngine(config, init_params(config, VOCAB, np.float64), dtype="float32")
    small = make_engine("float32")
    with threadpool_limits(limits=2, user_api="blas"):
        with large._split() as work:
            assert work.helpers == 0
            assert _blas_threads._numpy_blas().num_threads == 2
        with small._split() as work:
            assert work.helpers == 1
            assert _blas_threads._numpy_blas().num_threads == 1


@needs_openblas
@pytest.mark.parametrize("where", ["setting up the helpers", "closing the helpers"])
def test_an_error_anywhere_in_split_gives_blas_its_threads_back(monkeypatch, where):
    """Not only an error inside the block: one while the helpers are set up or shut down must
    not leave the whole process at one BLAS thread either."""
    real_close = Work.close

    def fail_to_start(*args, **kwargs):
        raise RuntimeError(where)

    def close_then_fail(self):
        real_close(self)  # the helpers do go, so no thread is left waiting
        raise RuntimeError(where)

    if where == "setting up the helpers":
        monkeypatch.setattr(Work, "__init__", fail_to_start)
    else:
        monkeypatch.setattr(Work, "close", close_then_fail)
    with threadpool_limits(limits=2, user_api="blas"):
        library = _blas_threads._numpy_blas()
        with pytest.raises(RuntimeError, match=where):
            with _blas_threads.BlasThreads().split():
                pass
        assert library.num_threads == 2


@needs_openblas
def test_blas_is_held_at_one_thread_for_the_whole_process_during_a_step():
    """What docs say about other threads: while a step's split is open, a product computed in
    another thread of the process also runs with one BLAS thread."""
    seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        with _blas_threads.BlasThreads().split() as work:
            assert work.helpers == 1
            other = threading.Thread(
                target=lambda: seen.append(_blas_threads._numpy_blas().num_threads)
            )
            other.start()
            other.join()
        seen.append(_blas_threads._numpy_blas().num_threads)
    assert seen == [1, 2]
