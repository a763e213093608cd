"""Python threads for the NumPy engine: one BLAS thread each, sharing a queue of tasks.

A training step is large products (the softmax and its gradients, the weight gradients) and
a chain of small ones (the recurrence, forward and back in time) that is too short for BLAS
to split across cores and that NumPy's elementwise loops run on one core. With BLAS using
every core for each product, the cores take turns: one of them idles through the chain. So
the NumPy engine holds BLAS to one thread per call for the step and runs the work in Python
threads instead (NumPy and BLAS release the GIL while they compute): the calling thread walks
the recurrence and puts each large product on a queue as soon as its inputs exist (a block
of softmax rows once the top layer has produced them, the softmax weight gradient while
back-propagation runs), and helper threads take them from the queue. Why not mix the two:
after each multi-threaded call OpenBLAS's own worker threads keep spinning on the other cores
for a long while, where they would compete with the helpers.

The number of threads is BLAS's own thread count when the step starts, so
``OPENBLAS_NUM_THREADS=1`` or ``threadpoolctl.threadpool_limits(1)`` give the plain serial
step with the products whole. This needs ``threadpoolctl`` to find and limit the BLAS library
NumPy uses; where it cannot (no threadpoolctl, a BLAS other than OpenBLAS, an OpenMP-threaded
OpenBLAS whose limits apply per thread, or another Python thread holding OpenBLAS's limits),
every step is serial.

OpenBLAS's thread count belongs to the whole process, not to a thread. While a step of the
NumPy engine runs, every other thread of the process that calls BLAS (a second engine stepping
in another thread, NumPy products in an application's own threads) gets one BLAS thread per
call too, and runs slower for it; nothing else changes for them. When the step ends the count
goes back to the value it had when the step began, also when the step raises or is interrupted
(Ctrl-C), so a change another thread makes to the count during a step is undone at the end of
the step. Two engines stepping at once in two threads of one process therefore work but do not
speed each other up: the second finds BLAS at one thread and runs its step serially. Run
concurrent trainings as separate processes.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np


@functools.cache
def _numpy_blas():
    """threadpoolctl's controller of the BLAS library NumPy calls, or None."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    libraries = ThreadpoolController().select(user_api="blas").lib_controllers
    numpy_dir = os.path.realpath(os.path.dirname(os.path.dirname(np.__file__)))
    own = [
        lib
        for lib in libraries  # numpy's wheels bundle it beside numpy (numpy.libs)
        if os.path.realpath(lib.filepath).startswith(numpy_dir)
    ]
    candidates = own or libraries
    if len(candidates) != 1:
        return None
    library = candidates[0]
    if library.internal_api != "openblas" or getattr(library, "threading_layer", "") != "pthreads":
        return None
    return library


class Task:
    """One piece of work, run exactly once: by a helper that takes it from the queue, or by
    the thread that waits for it first, whichever comes first."""

    def __init__(self, function: Callable[[], None]) -> None:
        self._function = function
        self._claimed = threading.Lock()
        self._done = threading.Event()
        self._error: BaseException | None = None

    def run(self) -> None:
        if not self._claimed.acquire(blocking=False):
            return  # another thread has it
        try:
            self._function()
        except BaseException as error:  # handed to whoever waits for it
            self._error = error
        finally:
            self._done.set()

    def wait(self) -> None:
        """Run it here if nobody has started it; wait for it; raise what it raised."""
        self.run()
        self._done.wait()
        if self._error is not None:
            raise self._error


class Work:
    """The tasks of one step: ``put`` queues a task (or runs it at once when there are no
    helpers), ``drain`` runs what is still queued here and waits for the rest."""

    def __init__(self, pool: ThreadPoolExecutor | None, helpers: int) -> None:
        self.helpers = helpers
        self._queue: collections.deque[Task] = collections.deque()
        self._tasks: list[Task] = []
        self._ready = threading.Condition()
        self._closed = False
        self._errors = np.geterr()  # NumPy's error settings are per thread; helpers copy them
        assert pool is not None or not helpers, "helpers run on a pool"
        self._helpers = [pool.submit(self._help) for _ in range(helpers)] if pool else []

    def put(self, function: Callable[[], None], first: bool = False) -> Task:
        """Queue ``function`` last, or with ``first`` ahead of every queued task."""
        task = Task(function)
        if not self.helpers:
            task.run()
        else:
            with self._ready:
                if first:
                    self._queue.appendleft(task)
                else:
                    self._queue.append(task)
                self._ready.notify()
        self._tasks.append(task)
        return task

    def drain(self) -> None:
        """Return when every task put so far has finished; raise the first error."""
        while task := self._take(block=False):
            task.run()
        for task in self._tasks:
            task.wait()
        self._tasks.clear()

    def close(self) -> None:
        """Let the helpers go once the queue is empty, and wait for them."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        wait(self._helpers)

    def _take(self, block: bool) -> Task | None:
        with self._ready:
            while not self._queue:
                if self._closed or not block:
                    return None
                self._ready.wait()
            return self._queue.popleft()

    def _help(self) -> None:
        with np.errstate(**self._errors):
            while task := self._take(block=True):
                task.run()


class BlasThreads:
    """The helper threads of one engine, and the switch that holds BLAS to one thread."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0

    @contextlib.contextmanager
    def split(self, enabled: bool = True) -> Iterator[Work]:
        """For the block: BLAS at one thread per call and ``Work`` with a helper for each
        further BLAS thread; with BLAS at one thread already, or not ``enabled``, ``Work``
        runs tasks at once and BLAS is left alone."""
        library = _numpy_blas() if enabled else None
        threads = (library.num_threads or 1) if library is not None else 1
        if threads == 1:
            library = None  # left alone
        if library is not None:
            library.set_num_threads(1)
        try:  # from here on, whatever raises, BLAS gets its thread count back
            if library is not None and library.num_threads != 1:
                # another Python thread controls OpenBLAS's limits
                library.set_num_threads(threads)
                library, threads = None, 1
            if threads - 1 > self._pool_size:  # one pool thread for each helper
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="ptb-lstm-numpy")
                self._pool_size = threads - 1
            work = Work(self._pool, threads - 1)
            try:
                yield work
                work.drain()
            finally:
                work.close()
        finally:
            if library is not None:
                library.set_num_threads(threads)
