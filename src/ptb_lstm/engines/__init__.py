"""Engines: interchangeable implementations of one model behind one narrow interface.

An engine holds only the maths: the forward pass, the gradients (by hand or by autodiff), the
clipped SGD update and the carried LSTM state. The trainer owns the loop, the schedule, logging
and checkpoints. Engines are loaded by name, lazily, so that TensorFlow is imported only when a
TensorFlow engine is asked for.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import os
import sys
import tempfile
from typing import ClassVar

import numpy as np

from ptb_lstm.config import Config
from ptb_lstm.errors import UserError
from ptb_lstm.params import DTYPES, Params

# name -> (module, class). Add an engine by writing one module and one line here.
REGISTRY: dict[str, tuple[str, str]] = {
    "numpy": ("ptb_lstm.engines.numpy_engine", "NumpyEngine"),
    "numpy-reference": ("ptb_lstm.engines.numpy_reference", "ReferenceEngine"),
    "tf-eager": ("ptb_lstm.engines.tf_eager", "TFEagerEngine"),
    "tf-graph": ("ptb_lstm.engines.tf_graph", "TFGraphEngine"),
}

ENGINES = tuple(REGISTRY)


class Engine(abc.ABC):
    """One model's parameters and carried state, and the two steps the trainer needs.

    ``inputs`` and ``targets`` are word ids [batch_size, num_steps]. The training loss is the
    cross-entropy summed over the time steps and averaged over the batch (docs/model.md §4).
    """

    name: ClassVar[str]

    def __init__(self, config: Config, params: Params, dtype: str = "float32") -> None:
        if dtype not in DTYPES:
            raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.config = config
        self.dtype = dtype
        self.vocab_size = int(params["embedding"].shape[0])
        #: The global norm of the last training step's gradient, before clipping (every
        #: parameter, the embedding's gradient counted once per distinct row); NaN before any.
        self.last_grad_norm: float = float("nan")

    @property
    def device(self) -> str:
        """Where the maths runs, for logs ("cpu", "/GPU:0", ...)."""
        return "cpu"

    @abc.abstractmethod
    def get_params(self) -> Params:
        """A copy of the parameters as NumPy arrays under their canonical names."""

    @abc.abstractmethod
    def set_params(self, params: Params) -> None:
        """Replace every parameter (canonical names and shapes)."""

    @abc.abstractmethod
    def reset_state(self, batch_size: int) -> None:
        """Zero the carried LSTM state (h and c of every layer) for ``batch_size`` streams."""

    @abc.abstractmethod
    def train_step(self, inputs: np.ndarray, targets: np.ndarray, learning_rate: float,
                   masks: list[np.ndarray] | None = None) -> float:
        """Forward, backward, global-norm clipping and SGD at ``learning_rate``; carries the
        state on; returns the step's loss (summed over time, mean over the batch) and sets
        ``last_grad_norm``.

        ``masks`` are the step's dropout masks (``ptb_lstm.dropout``): num_layers + 1 arrays
        [num_steps, batch_size, hidden_size] of 0 or 1 / (1 - rate), multiplied into the
        embedding output (index 0), each layer's output going into the next (1 .. L - 1) and
        the top layer's output going into the softmax (L); None trains without dropout. The
        engine draws no random numbers of its own: the trainer hands it the masks."""

    @abc.abstractmethod
    def eval_step(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        """Forward without dropout; carries the state on; returns the summed NLL of all
        ``batch_size * num_steps`` targets."""

    @abc.abstractmethod
    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Forward without dropout; carries the state on; returns the unnormalised
        next-word scores [batch_size, num_steps, vocab_size] (for sampling and scoring)."""

    @abc.abstractmethod
    def get_state(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """A copy of the carried state: (h, c) of every layer, each [batch_size, hidden]."""

    @abc.abstractmethod
    def set_state(self, state: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Replace the carried state (as returned by ``get_state``)."""



@contextlib.contextmanager
def quiet_native_stderr():
    """Hold back what native code writes to file descriptor 2 (TensorFlow logs CUDA probing
    before its log level applies); replay it if the block raises, so no real error is lost."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (an embedding application): do nothing
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def engine_class(name: str) -> type[Engine]:
    """The engine class registered as ``name``, importing its module now."""
    if name not in REGISTRY:
        raise UserError(f"--engine: unknown engine {name!r}; choose one of {', '.join(REGISTRY)}")
    module_name, class_name = REGISTRY[name]
    if name.startswith("tf"):
        # TensorFlow's C++ start-up chatter (CUDA probing on CPU-only machines) is noise here;
        # set TF_CPP_MIN_LOG_LEVEL yourself to see it.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with quiet_native_stderr():
            module = importlib.import_module(module_name)
    except ImportError as error:
        if name.startswith("tf") and (error.name or "").split(".")[0] == "tensorflow":
            raise UserError(f"--engine {name} needs TensorFlow, which is not installed; "
                            "install it with: pip install 'ptb-lstm[tf]'") from None
        raise
    return getattr(module, class_name)


def create_engine(name: str, config: Config, params: Params, dtype: str = "float32") -> Engine:
    """An engine of kind ``name`` holding a copy of ``params`` in ``dtype``."""
    return engine_class(name)(config, params, dtype=dtype)
