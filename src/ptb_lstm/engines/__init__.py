"""Engines: interchangeable implementations of one model behind one narrow interface.

An engine holds only the maths: the forward pass, the gradients (by hand or by autodiff), the
clipped update (the paper's SGD, or Adam / AMSGrad as ``ptb_lstm.optim`` states them) with the
optimizer's state. The carried LSTM state and its rules are kept once, in ``Engine``; an engine
only says how its arrays turn into NumPy arrays and back. The trainer owns the loop, the
schedule, logging and checkpoints. Engines are loaded by name, lazily, so that an optional
framework (TensorFlow, PyTorch) is imported only when one of its engines is asked for.

Adding an engine: one module with a subclass of ``Engine`` and one line in ``REGISTRY`` (with
the optional extra of ``pyproject.toml`` that installs its framework, if it needs one). The
command line, ``ptb-lstm agree``, ``make bench`` and the tests take the engine list from here.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import importlib.util
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from ptb_lstm.config import Config
from ptb_lstm.errors import UserError
from ptb_lstm.params import DTYPES, Params


class EngineSpec(NamedTuple):
    """Where an engine lives and what it needs beyond the core package."""

    module: str  # the module holding the class, imported only when the engine is chosen
    class_name: str
    extra: str | None = None  # the optional extra of pyproject.toml that installs its framework
    framework: str | None = None  # the top-level module that extra provides ("tensorflow")
    framework_name: str | None = None  # its name for people ("TensorFlow")


# name -> where it lives. Add an engine by writing one module and one line here.
REGISTRY: dict[str, EngineSpec] = {
    "numpy": EngineSpec("ptb_lstm.engines.numpy_engine", "NumpyEngine"),
    "numpy-reference": EngineSpec("ptb_lstm.engines.numpy_reference", "ReferenceEngine"),
    "tf-eager": EngineSpec(
        "ptb_lstm.engines.tf_eager", "TFEagerEngine", "tf", "tensorflow", "TensorFlow"
    ),
    "tf-graph": EngineSpec(
        "ptb_lstm.engines.tf_graph", "TFGraphEngine", "tf", "tensorflow", "TensorFlow"
    ),
    "torch": EngineSpec(
        "ptb_lstm.engines.torch_engine", "TorchEngine", "torch", "torch", "PyTorch"
    ),
}

ENGINES = tuple(REGISTRY)

#: What ``--device`` accepts: ``auto`` takes a GPU when the engine's framework sees one.
DEVICES = ("auto", "cpu", "cuda")


def spec(name: str) -> EngineSpec:
    """The registry entry of ``name`` (a plain (module, class) pair is read as one too)."""
    if name not in REGISTRY:
        raise UserError(f"--engine: unknown engine {name!r}; choose one of {', '.join(REGISTRY)}")
    return EngineSpec(*REGISTRY[name])


def install_hint(name: str) -> str:
    """The pip command that installs what engine ``name`` needs ("" when it needs nothing),
    spelled to run as printed: this interpreter's pip, and the source folder's extra when the
    package runs from a checkout (as `make` installs it)."""
    extra = spec(name).extra
    return install_command(extra) if extra else ""


def install_command(extra: str) -> str:
    """``python -m pip install`` of the package's optional ``extra`` into this interpreter."""

    def shown(path: str) -> str:
        relative = os.path.relpath(path)
        return path if relative.startswith("..") else relative

    python = shlex.quote(shown(os.path.abspath(sys.executable)))
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "pyproject.toml").is_file() and (checkout / "src" / "ptb_lstm").is_dir():
        return f"{python} -m pip install -e '{shown(str(checkout))}[{extra}]'"
    return f"{python} -m pip install 'ptb-lstm[{extra}]'"


def is_installed(name: str) -> bool:
    """Whether engine ``name``'s optional framework can be imported (without importing it)."""
    framework = spec(name).framework
    return framework is None or importlib.util.find_spec(framework) is not None


def installed_engines() -> list[str]:
    """The registered engines whose framework is installed, in registry order."""
    return [name for name in REGISTRY if is_installed(name)]


def engines_help(default: str | None = "numpy") -> str:
    """The ``--engine`` help: every engine, and the extra each optional framework comes with."""
    names = [f"{n} (default)" if n == default else n for n in REGISTRY]
    needs: dict[str, list[str]] = {}
    for name in REGISTRY:
        extra = spec(name).extra
        if extra:
            needs.setdefault(extra, []).append(name)
    notes = "; ".join(
        f"{' and '.join(engines)} need{'s' if len(engines) == 1 else ''} the [{extra}] extra"
        for extra, engines in needs.items()
    )
    return ", ".join(names) + (f" ({notes})" if notes else "")


#: The carried state as NumPy arrays: (h, c) of every layer, each [batch_size, hidden_size].
State = list[tuple[np.ndarray, np.ndarray]]


class Gradients(Protocol):
    """What ``Engine.gradients`` returns: one batch's loss and its exact gradient."""

    #: The cross-entropy summed over the time steps and averaged over the batch.
    loss: float
    #: d loss / d (h, c) of the incoming state, every layer, each [batch_size, hidden_size]:
    #: for checks only (truncated BPTT applies none of it).
    state_grad: State
    #: The state the forward pass ended in, (h, c) of every layer.
    final_state: State

    def global_norm(self) -> float:
        """sqrt of the sum of squares of every parameter's gradient (not the state's)."""
        ...

    def by_name(self) -> Params:
        """Every parameter's gradient as a dense array of the parameter's shape, under the
        canonical names and in their order (the embedding's as [V, H])."""
        ...


class Engine(abc.ABC):
    """One model's parameters and carried state, and the steps the trainer and commands need.

    ``inputs`` and ``targets`` are word ids [batch_size, num_steps]. The training loss is the
    cross-entropy summed over the time steps and averaged over the batch (docs/model.md §4).
    Parameters go in and out as NumPy arrays under the canonical names and shapes of
    ``ptb_lstm.params`` (docs/model.md §2), whatever the engine holds inside.

    The carried state: each step starts from the state the previous step of the same batch
    size left (no gradient flows back into it) and leaves its final state; a step whose batch
    size differs from the carried state's starts from zeros. This class keeps it, in
    ``state``, for every engine (``reset_state``, ``get_state``, ``set_state``,
    ``_state_for``); an engine converts its arrays with ``_to_numpy`` and ``_from_numpy``, and
    its steps read ``_state_for(batch_size)`` and assign their final state to ``state``.
    """

    #: The registry name; written into checkpoints, config.json and logs.
    name: ClassVar[str]
    #: The ``--device`` values it accepts besides "auto": ("cpu",) or ("cpu", "cuda").
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    #: The model's hyper-parameters (shapes, max_grad_norm, ...).
    config: Config
    #: "float32" or "float64": the type of the maths, of ``get_params`` and of ``get_state``.
    dtype: str
    #: Rows of the embedding (V).
    vocab_size: int
    #: The global norm of the last training step's gradient, before clipping (every
    #: parameter, the embedding's gradient counted once per distinct row); NaN before any.
    last_grad_norm: float
    #: The carried state in the engine's own arrays (NumPy arrays, tensors): (h, c) of every
    #: layer, each [batch_size, hidden_size]. Set by ``reset_state`` and ``set_state``, and by
    #: each step to the state it ended in.
    state: list[tuple[Any, Any]]

    def __init__(
        self, config: Config, params: Params, dtype: str = "float32", device: str = "auto"
    ) -> None:
        """``device``: "auto" (a GPU when the framework sees one and the engine can use it,
        else the CPU), "cpu" or "cuda"; an engine that cannot run there raises UserError."""
        if dtype not in DTYPES:
            raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if device not in DEVICES:
            raise UserError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
        if device != "auto" and device not in self.devices:
            raise UserError(
                f"--device {device}: the {self.name} engine runs on "
                f"{' or '.join(self.devices)} only; choose an engine that runs on "
                f"{device} or drop --device"
            )
        self.config = config
        self.dtype = dtype
        self.vocab_size = int(params["embedding"].shape[0])
        self.last_grad_norm = float("nan")

    @property
    def device(self) -> str:
        """Where the maths runs, for logs ("cpu", "/GPU:0", "cuda:0", ...)."""
        return "cpu"

    @abc.abstractmethod
    def get_params(self) -> Params:
        """A copy of the parameters as NumPy arrays under their canonical names."""

    @abc.abstractmethod
    def set_params(self, params: Params) -> None:
        """Replace every parameter (canonical names and shapes)."""

    @abc.abstractmethod
    def train_step(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        learning_rate: float,
        masks: list[np.ndarray] | None = None,
    ) -> float:
        """Forward, backward, global-norm clipping and the update of ``config.optimizer`` at
        ``learning_rate`` (SGD; or Adam / AMSGrad exactly as ``ptb_lstm.optim`` writes them,
        counting this update in the optimizer's state); carries the state on; returns the
        step's loss (summed over time, mean over the batch) and sets ``last_grad_norm``.

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
    def get_optimizer_state(self) -> dict[str, np.ndarray]:
        """A copy of the optimizer's state as plain arrays under the names and shapes of
        ``ptb_lstm.optim.state_shapes`` ({} for SGD, which keeps none)."""

    @abc.abstractmethod
    def set_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        """Replace the optimizer's state (as returned by ``get_optimizer_state``)."""

    def gradients(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        state: list,
        masks: list[np.ndarray] | None = None,
    ) -> Gradients:
        """The loss of one batch and its exact gradient, by back-propagation through time over
        its num_steps: ``inputs`` and ``targets`` [batch_size, num_steps], from ``state``
        ((h, c) of every layer, each [batch_size, hidden_size], in the engine's arrays), with
        ``masks`` as ``train_step`` takes them. Changes neither the parameters nor the carried
        state. The gradient checks (``ptb_lstm.gradcheck``) rest on it.

        The engines that write back-propagation by hand (numpy, numpy-reference) give it; an
        engine whose framework differentiates inside its step need not, and this default says
        so."""
        raise NotImplementedError(
            f"the {self.name} engine computes its gradients inside "
            "train_step only; numpy and numpy-reference give them"
        )

    # -- the carried state, kept here once for every engine ----------------------------------

    def reset_state(self, batch_size: int) -> None:
        """Zero the carried LSTM state (h and c of every layer) for ``batch_size`` streams."""
        zeros = np.zeros((batch_size, self.config.hidden_size), self.dtype)
        self.set_state([(zeros, zeros)] * self.config.num_layers)

    def get_state(self) -> State:
        """A copy of the carried state: (h, c) of every layer, each [batch_size, hidden]."""
        return [(self._to_numpy(h), self._to_numpy(c)) for h, c in self.state]

    def set_state(self, state: State) -> None:
        """Replace the carried state (as returned by ``get_state``)."""
        self.state = [(self._from_numpy(h), self._from_numpy(c)) for h, c in state]

    def _state_for(self, batch_size: int) -> list[tuple[Any, Any]]:
        """The state a step of ``batch_size`` rows starts from: the carried one, or zeros
        when the carried state has another batch size (a new batch shape starts afresh)."""
        if int(self.state[0][0].shape[0]) != batch_size:
            self.reset_state(batch_size)
        return self.state

    def _to_numpy(self, value: Any) -> np.ndarray:
        """A copy of one of the engine's arrays as a NumPy array (the default: NumPy's own)."""
        return np.array(value, self.dtype)

    def _from_numpy(self, array: np.ndarray) -> Any:
        """A NumPy array as one of the engine's arrays, in ``dtype``, a copy (the default:
        a NumPy array)."""
        return np.array(array, self.dtype)


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
    """The engine class registered as ``name``, importing its module now; a missing optional
    framework is a UserError that says which extra installs it."""
    entry = spec(name)
    if entry.framework == "tensorflow":
        # TensorFlow's C++ start-up chatter (CUDA probing on CPU-only machines) is noise here;
        # set TF_CPP_MIN_LOG_LEVEL yourself to see it. On a GPU, TensorFlow takes memory as
        # it needs it rather than all at once, so that a torch engine can share the GPU.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    try:
        with quiet_native_stderr():
            module = importlib.import_module(entry.module)
    except ImportError as error:
        missing = (error.name or "").split(".")[0]
        if entry.framework is not None and missing == entry.framework:
            raise UserError(
                f"--engine {name} needs {entry.framework_name or entry.framework}, "
                f"which is not installed; install it with: {install_hint(name)}"
            ) from None
        raise
    return getattr(module, entry.class_name)


def create_engine(
    name: str, config: Config, params: Params, dtype: str = "float32", device: str = "auto"
) -> Engine:
    """An engine of kind ``name`` holding a copy of ``params`` in ``dtype`` on ``device``
    ("auto", "cpu" or "cuda")."""
    return engine_class(name)(config, params, dtype=dtype, device=device)
