"""PyTorch engine: ``torch.nn.LSTM`` (cuDNN's fused kernels on a GPU) on the canonical parameters.

Each layer is its own single-layer ``nn.LSTM``: a multi-layer one would draw its own dropout
masks between layers, while here the masks come from ``ptb_lstm.dropout`` like every other
engine's. PyTorch's LSTM uses the gates in the same order, i, f, g, o, and computes

    z    = x(t) @ weight_ih.T + bias_ih + h(t-1) @ weight_hh.T + bias_hh        # [B, 4H]

so ``weight_ih = kernel.T`` and ``weight_hh = recurrent_kernel.T``. The canonical bias lives in
``bias_ih``; ``bias_hh`` is held at zero and never trained, so that SGD moves one bias, as in
every other engine. Parameters are copied in place, so that on a GPU cuDNN keeps its one
contiguous weight buffer.

The embedding's gradient is sparse (the rows the batch used) and is coalesced before the global
norm, so each row counts once, as in the other engines. Clipping and SGD are written out (not
``clip_grad_norm_`` and ``torch.optim.SGD``) so that the update is, operation for operation, the
NumPy engine's; so are Adam and AMSGrad (``ptb_lstm.optim``: the update of ``torch.optim.Adam``,
with the embedding's gradient made dense first, as that optimizer would need it).

On a GPU, TensorFloat-32 is switched off for cuDNN and for matrix products: TF32 rounds the
products' inputs to 10 bits of mantissa, and the engine would no longer compute the function
the other engines compute (in float32, to about 1e-4).

Shapes: T = num_steps, B = batch size, H = hidden size, V = vocabulary size, L = layers;
activations are time-major ([T, B, H]), as ``nn.LSTM`` takes them and as the masks come.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ptb_lstm.engines import Engine
from ptb_lstm.errors import UserError
from ptb_lstm.optim import bias_corrections, moments
from ptb_lstm.params import param_shapes

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def cuda_available() -> bool:
    """Whether PyTorch sees a usable CUDA GPU. A CUDA build of torch on a machine without one
    warns while it probes; the answer (no GPU) is all that matters here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.cuda.is_available()


def pick_device(device: str = "auto") -> torch.device:
    """ "cpu"; "cuda", the current CUDA GPU; "auto", that GPU when PyTorch sees one, else the
    CPU."""
    if device == "cpu":
        return torch.device("cpu")
    if cuda_available():
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        return torch.device("cuda", torch.cuda.current_device())
    if device == "cuda":
        raise UserError(
            "--device cuda: PyTorch sees no CUDA GPU (is this torch a CPU build? "
            f"it is {torch.__version__}); use --device cpu or auto"
        )
    return torch.device("cpu")


class TorchEngine(Engine):
    name = "torch"
    devices = ("cpu", "cuda")

    def __init__(self, config, params, dtype="float32", device="auto"):
        super().__init__(config, params, dtype, device)
        self._device = pick_device(device)
        hidden, vocab = config.hidden_size, self.vocab_size
        like = {"dtype": TORCH_DTYPES[dtype], "device": self._device}
        self.embedding = torch.empty(vocab, hidden, **like).requires_grad_()
        self.layers = [
            torch.nn.LSTM(hidden, hidden, num_layers=1, **like) for _ in range(config.num_layers)
        ]
        for lstm in self.layers:
            lstm.bias_hh_l0.requires_grad_(False)
        self.softmax_kernel = torch.empty(hidden, vocab, **like).requires_grad_()  # [H, V]
        self.softmax_bias = torch.empty(vocab, **like).requires_grad_()
        # Trained tensors, in the canonical order (the embedding first).
        self.trained = [self.embedding]
        for lstm in self.layers:
            self.trained += [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0]
        self.trained += [self.softmax_kernel, self.softmax_bias]
        # Their canonical names; the LSTM's weights are held transposed (weight_ih = kernel.T).
        self.names = list(param_shapes(config, vocab))
        # Adam's and AMSGrad's moments, one tensor per trained tensor and in its layout; the
        # update count t is a Python int, so that the bias corrections are the NumPy engines'.
        self.t = 0
        self.slots = {
            part: [torch.zeros_like(p, requires_grad=False) for p in self.trained]
            for part in moments(config)
        }
        self.set_params(params)
        self.reset_state(config.batch_size)

    @property
    def device(self) -> str:
        return str(self._device)

    # -- parameters and the optimizer's state (the carried state is kept by Engine) --------

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, self.dtype)).to(self._device)

    def _ids(self, ids: np.ndarray) -> torch.Tensor:
        """Word ids [B, T] as a time-major int64 tensor [T, B] on the engine's device."""
        return torch.from_numpy(np.ascontiguousarray(ids.T, np.int64)).to(self._device)

    @staticmethod
    def _array(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy().copy()

    def get_params(self):
        params = {"embedding": self._array(self.embedding)}
        for layer, lstm in enumerate(self.layers):
            params[f"lstm_{layer}_kernel"] = self._array(lstm.weight_ih_l0.T)
            params[f"lstm_{layer}_recurrent_kernel"] = self._array(lstm.weight_hh_l0.T)
            params[f"lstm_{layer}_bias"] = self._array(lstm.bias_ih_l0 + lstm.bias_hh_l0)
        params["softmax_kernel"] = self._array(self.softmax_kernel)
        params["softmax_bias"] = self._array(self.softmax_bias)
        return params

    def set_params(self, params):
        with torch.no_grad():
            self.embedding.copy_(self._tensor(params["embedding"]))
            for layer, lstm in enumerate(self.layers):
                lstm.weight_ih_l0.copy_(self._tensor(params[f"lstm_{layer}_kernel"]).T)
                lstm.weight_hh_l0.copy_(self._tensor(params[f"lstm_{layer}_recurrent_kernel"]).T)
                lstm.bias_ih_l0.copy_(self._tensor(params[f"lstm_{layer}_bias"]))
                lstm.bias_hh_l0.zero_()
            self.softmax_kernel.copy_(self._tensor(params["softmax_kernel"]))
            self.softmax_bias.copy_(self._tensor(params["softmax_bias"]))

    def _canonical(self, name: str, tensor: torch.Tensor) -> np.ndarray:
        """A tensor laid out like the trained tensor of ``name``, in the canonical layout."""
        transposed = name.endswith("kernel") and name.startswith("lstm_")
        return self._array(tensor.T if transposed else tensor)

    def get_optimizer_state(self):
        if not self.slots:
            return {}
        state = {"t": np.array(self.t, np.int64)}
        for part, tensors in self.slots.items():
            for name, tensor in zip(self.names, tensors, strict=True):
                state[f"{part}_{name}"] = self._canonical(name, tensor)
        return state

    def set_optimizer_state(self, state):
        if not self.slots:
            return
        self.t = int(state["t"])
        with torch.no_grad():
            for part, tensors in self.slots.items():
                for name, tensor in zip(self.names, tensors, strict=True):
                    value = self._tensor(state[f"{part}_{name}"])
                    transposed = name.endswith("kernel") and name.startswith("lstm_")
                    tensor.copy_(value.T if transposed else value)

    def _to_numpy(self, value: torch.Tensor) -> np.ndarray:
        return self._array(value)

    def _from_numpy(self, array: np.ndarray) -> torch.Tensor:
        return self._tensor(array)

    # -- the model --------------------------------------------------------------------------

    def _forward(
        self, inputs: np.ndarray, masks: list[torch.Tensor] | None, sparse: bool
    ) -> torch.Tensor:
        """Logits [T*B, V] (time-major rows) for inputs [B, T]; carries the state on, detached
        so that no gradient flows into the previous step."""
        state = self._state_for(inputs.shape[0])
        ids = self._ids(inputs)  # [T, B]
        x = torch.nn.functional.embedding(ids, self.embedding, sparse=sparse)  # [T, B, H]
        final = []
        for layer, lstm in enumerate(self.layers):
            if masks is not None:
                x = x * masks[layer]
            h, c = state[layer]
            x, (h, c) = lstm(x, (h[None], c[None]))  # x: [T, B, H]; h, c: [1, B, H]
            final.append((h[0].detach(), c[0].detach()))
        if masks is not None:
            x = x * masks[self.config.num_layers]
        self.state = final
        return torch.addmm(
            self.softmax_bias, x.reshape(-1, self.config.hidden_size), self.softmax_kernel
        )

    def _summed_nll(self, logits: torch.Tensor, targets: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(
            logits, self._ids(targets).reshape(-1), reduction="sum"
        )

    # -- the steps --------------------------------------------------------------------------

    def train_step(self, inputs, targets, learning_rate, masks=None):
        if masks is not None:
            masks = [self._tensor(m) for m in masks]
        logits = self._forward(inputs, masks, sparse=True)
        loss = self._summed_nll(logits, targets) / inputs.shape[0]
        gradients = list(torch.autograd.grad(loss, self.trained))
        # The embedding's gradient holds a row per input position; summing duplicates leaves
        # one row per distinct word, whose squares the global norm adds once.
        embedding_grad = gradients[0].coalesce()
        rows, values = embedding_grad.indices()[0], embedding_grad.values()
        squares = torch.stack([values.pow(2).sum(), *(g.pow(2).sum() for g in gradients[1:])])
        loss_value, norm = torch.stack([loss.detach(), squares.sum().sqrt()]).tolist()
        max_norm = self.config.max_grad_norm
        if self.slots:
            gradients[0] = embedding_grad.to_dense()
            self._adam(gradients, learning_rate, max_norm / max(norm, max_norm))
            self.last_grad_norm = norm
            return loss_value
        # Global-norm clipping (as tf.clip_by_global_norm), then plain SGD; the embedding gets
        # a sparse update of the rows the batch used.
        step = learning_rate * max_norm / max(norm, max_norm)
        with torch.no_grad():
            self.embedding.index_add_(0, rows, values.mul_(-step))
            for parameter, gradient in zip(self.trained[1:], gradients[1:], strict=True):
                parameter.sub_(gradient.mul_(step))
        self.last_grad_norm = norm
        return loss_value

    def _adam(self, gradients: list[torch.Tensor], learning_rate: float, scale: float) -> None:
        """Adam or AMSGrad on the gradients (dense, in ``trained`` order) times the clipping
        ``scale``, in the order of operations of ``ptb_lstm.optim``."""
        config = self.config
        self.t += 1
        correction1, correction2 = bias_corrections(config, self.t)
        with torch.no_grad():
            for index, (parameter, gradient) in enumerate(
                zip(self.trained, gradients, strict=True)
            ):
                g = gradient.mul_(scale)  # clipped by global norm
                m, v = self.slots["m"][index], self.slots["v"][index]
                m.mul_(config.beta1).add_(g * (1.0 - config.beta1))
                v.mul_(config.beta2).add_((g * g) * (1.0 - config.beta2))
                if config.optimizer == "amsgrad":
                    v = torch.maximum(self.slots["vmax"][index], v, out=self.slots["vmax"][index])
                denominator = (v / correction2).sqrt_().add_(config.epsilon)
                parameter.sub_((m / correction1).mul_(learning_rate).div_(denominator))

    def eval_step(self, inputs, targets):
        with torch.no_grad():
            return float(self._summed_nll(self._forward(inputs, None, sparse=False), targets))

    def logits(self, inputs):
        with torch.no_grad():
            logits = self._forward(inputs, None, sparse=False)
        batch, steps = inputs.shape
        return self._array(logits).reshape(steps, batch, -1).transpose(1, 0, 2)
