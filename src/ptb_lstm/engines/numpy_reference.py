"""The reference engine: the whole model in plain NumPy, written to be read top to bottom.

One training step, in the order a derivation goes: embedding, dropout, the LSTM forward pass
one time step at a time, the softmax and the cross-entropy, then back-propagation through time
(BPTT) from the softmax down to the embedding, global-norm clipping and SGD (or Adam / AMSGrad,
``ptb_lstm.optim``). Each line that computes an equation has the equation beside it. There are
no threads, no reused buffers and no fused tricks: the `numpy` engine computes the same function
faster, and the tests hold it to this one within 1e-12 (float64).

Shapes: T = num_steps, B = batch size, H = hidden size, V = vocabulary size, L = layers.
Activations are time-major, [T, B, ...]; the gates are laid out i, f, g, o (docs/model.md):

    z(t) = x(t) W + h(t-1) U + b                      W, U, b = kernel, recurrent_kernel, bias
    i = sigma(z_i)   f = sigma(z_f)   g = tanh(z_g)   o = sigma(z_o)
    c(t) = f * c(t-1) + i * g
    h(t) = o * tanh(c(t))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptb_lstm.engines import Engine
from ptb_lstm.optim import NumpyAdam
from ptb_lstm.params import DTYPES, Params

State = list[tuple[np.ndarray, np.ndarray]]  # per layer: (h [B, H], c [B, H])


def sigmoid(z: np.ndarray) -> np.ndarray:
    """sigma(z) = 1 / (1 + exp(-z)); its derivative is sigma(z) (1 - sigma(z))."""
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class Layer:
    """What the forward pass of one LSTM layer keeps for the backward pass."""

    x: np.ndarray  # [T, B, H] the layer's input, after dropout
    h: np.ndarray  # [T + 1, B, H] h(-1), h(0) .. h(T-1): h[t] is h(t-1), h[t + 1] is h(t)
    c: np.ndarray  # [T + 1, B, H] c(-1), c(0) .. c(T-1), the same way
    i: np.ndarray  # [T, B, H] the four gates, activated; not shifted: i[t] is i(t)
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray


@dataclass
class Forward:
    """Everything one forward pass computed."""

    ids: np.ndarray  # [T, B] input word ids
    layers: list[Layer]
    top: np.ndarray  # [T, B, H] the top layer's output after dropout
    logits: np.ndarray | None  # [T, B, V]; None when the forward pass was asked for none
    final_state: State


@dataclass
class Gradients:
    """One batch's loss and its gradient with respect to every parameter and the state."""

    loss: float  # cross-entropy summed over time, averaged over the batch
    params: Params  # d loss / d parameter, every parameter (the embedding's as a dense [V, H])
    state_grad: State  # d loss / d (h(-1), c(-1)) of every layer (for checks; never applied)
    final_state: State

    def global_norm(self) -> float:
        """sqrt(sum over every parameter of sum(gradient^2))."""
        return float(np.sqrt(sum(np.sum(g * g) for g in self.params.values())))

    def by_name(self) -> Params:
        return self.params


class ReferenceEngine(Engine):
    """The model of docs/model.md in plain NumPy; float32 or float64."""

    name = "numpy-reference"

    def __init__(self, config, params, dtype="float32", device="auto"):
        super().__init__(config, params, dtype, device)
        self.np_dtype = DTYPES[dtype]
        self.hidden_size, self.num_layers = config.hidden_size, config.num_layers
        self.set_params(params)
        self.reset_state(config.batch_size)
        # Adam and AMSGrad keep moments per parameter; the paper's SGD keeps nothing.
        self.adam = (
            None if config.optimizer == "sgd" else NumpyAdam(config, self.vocab_size, self.np_dtype)
        )

    # -- parameters and the optimizer's state (the carried state is kept by Engine) ----------

    def get_params(self) -> Params:
        return {name: value.copy() for name, value in self.params.items()}

    def set_params(self, params: Params) -> None:
        self.params = {name: np.array(value, self.np_dtype) for name, value in params.items()}

    def get_optimizer_state(self) -> dict[str, np.ndarray]:
        return self.adam.get_state() if self.adam else {}

    def set_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        if self.adam:
            self.adam.set_state(state)

    # -- the forward pass -------------------------------------------------------------------

    def forward(
        self,
        inputs: np.ndarray,
        state: State,
        masks: list[np.ndarray] | None = None,
        with_logits: bool = True,
    ) -> Forward:
        """The logits of inputs [B, T] from the incoming state; masks: L + 1 dropout masks
        [T, B, H] (None: no dropout). ``with_logits=False`` stops below the softmax (logits
        None), for a reader of the activations only (``ptb_lstm.look``)."""
        p, H = self.params, self.hidden_size
        ids = inputs.T  # [T, B] time-major
        T = ids.shape[0]
        x = p["embedding"][ids]  # [T, B, H]            e(t) = E[w(t)]
        if masks is not None:
            x = x * masks[0]  # dropout on the embedding output
        layers, final_state = [], []
        for layer in range(self.num_layers):
            W, U, b = (
                p[f"lstm_{layer}_kernel"],
                p[f"lstm_{layer}_recurrent_kernel"],
                p[f"lstm_{layer}_bias"],
            )
            h = np.zeros((T + 1,) + state[layer][0].shape, self.np_dtype)  # [T + 1, B, H]
            c = np.zeros_like(h)
            h[0], c[0] = state[layer]  # the state carried in from the previous batch
            i, f, g, o = (np.empty_like(x) for _ in range(4))  # each [T, B, H]
            for t in range(T):
                z = x[t] @ W + h[t] @ U + b  # [B, 4H]        z = x(t) W + h(t-1) U + b
                i[t] = sigmoid(z[:, 0 * H : 1 * H])  # i = sigma(z_i)
                f[t] = sigmoid(z[:, 1 * H : 2 * H])  # f = sigma(z_f)
                g[t] = np.tanh(z[:, 2 * H : 3 * H])  # g = tanh(z_g)
                o[t] = sigmoid(z[:, 3 * H : 4 * H])  # o = sigma(z_o)
                c[t + 1] = f[t] * c[t] + i[t] * g[t]  # c(t) = f * c(t-1) + i * g
                h[t + 1] = o[t] * np.tanh(c[t + 1])  # h(t) = o * tanh(c(t))
            layers.append(Layer(x, h, c, i, f, g, o))
            final_state.append((h[T].copy(), c[T].copy()))
            x = h[1:]  # [T, B, H] this layer's outputs are the next one's inputs
            if masks is not None:
                x = x * masks[layer + 1]  # dropout between layers and on the top output
        logits = None
        if with_logits:
            logits = x @ p["softmax_kernel"] + p["softmax_bias"]  # [T, B, V]  y = x_top W_s + b_s
        return Forward(ids=ids, layers=layers, top=x, logits=logits, final_state=final_state)

    # -- the loss ---------------------------------------------------------------------------

    @staticmethod
    def log_softmax(logits: np.ndarray) -> np.ndarray:
        """log p = y - log sum_v exp(y_v) over the last axis, computed as
        (y - m) - log sum_v exp(y_v - m) with m the row's maximum: the same value, exp never
        overflows, and no probability is formed (and rounded to 0) before its logarithm."""
        shifted = logits - logits.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    @staticmethod
    def nll(log_probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """-log p(target) of every position: log_probs [T, B, V], targets [T, B] -> [T, B]."""
        T, B = targets.shape
        return -log_probs[np.arange(T)[:, None], np.arange(B)[None, :], targets]

    # -- the backward pass ------------------------------------------------------------------

    def gradients(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        state: State,
        masks: list[np.ndarray] | None = None,
    ) -> Gradients:
        """Loss and gradient of one batch (inputs, targets [B, T]) by BPTT over its T steps.
        Nothing flows back into the incoming state (truncation at the batch boundary); its
        gradient is returned for checks only. The parameters are not changed."""
        p, H, (B, T) = self.params, self.hidden_size, inputs.shape
        fwd = self.forward(inputs, state, masks)
        assert fwd.logits is not None  # asked for, as by default
        targets = targets.T  # [T, B]
        log_probs = self.log_softmax(fwd.logits)  # [T, B, V]
        loss = float(self.nll(log_probs, targets).sum()) / B  # L = (1/B) sum_t sum_r -log p
        dlogits = np.exp(log_probs)  # [T, B, V]           the probabilities softmax(y)
        dlogits[np.arange(T)[:, None], np.arange(B)[None, :], targets] -= 1.0  # p_j - [j = target]
        dlogits /= B  # dL/dy = (p - onehot(target)) / B
        grads: Params = {}
        top = fwd.top.reshape(T * B, H)
        grads["softmax_kernel"] = top.T @ dlogits.reshape(T * B, -1)  # dW_s = sum x_top^T dy
        grads["softmax_bias"] = dlogits.sum(axis=(0, 1))  # db_s = sum dy
        # dx is always the gradient of an input x, after its mask: first of the softmax's
        # input x_top, then of each layer's; dh_above, that of a layer's output h before the mask.
        dx = dlogits @ p["softmax_kernel"].T  # [T, B, H]     dx_top = dy W_s^T
        state_grad: State = [None] * self.num_layers  # type: ignore[list-item]
        for layer in reversed(range(self.num_layers)):
            # back through the dropout above the layer (the mask is 1 without dropout)
            dh_above = dx if masks is None else dx * masks[layer + 1]
            dx, state_grad[layer] = self._layer_backward(layer, fwd.layers[layer], dh_above, grads)
        de = dx if masks is None else dx * masks[0]  # back through the embedding's dropout
        # The embedding gradient: each position adds its de(t) to the row of its word
        # (a scatter-add: a word used twice in the batch gets both contributions).
        grads["embedding"] = np.zeros_like(p["embedding"])  # [V, H]
        np.add.at(grads["embedding"], fwd.ids, de)  # dE[w(t)] += de(t)
        ordered = {name: grads[name] for name in p}  # the canonical order
        return Gradients(loss, ordered, state_grad, fwd.final_state)

    def _layer_backward(
        self, layer: int, cache: Layer, dh_above: np.ndarray, grads: Params
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """BPTT through one layer, last step first, from dL/dh(t) [T, B, H] coming from above;
        puts dW, dU, db in grads; returns dL/dx [T, B, H] and dL/d(h(-1), c(-1))."""
        p, H = self.params, self.hidden_size
        W, U = p[f"lstm_{layer}_kernel"], p[f"lstm_{layer}_recurrent_kernel"]
        dW, dU = np.zeros_like(W), np.zeros_like(U)
        db = np.zeros_like(p[f"lstm_{layer}_bias"])
        dx = np.empty_like(dh_above)  # [T, B, H]
        T, B = dh_above.shape[:2]
        dh_next = np.zeros((B, H), self.np_dtype)  # dL/dh(t) from step t + 1: none at the end
        dc_next = np.zeros((B, H), self.np_dtype)  # dL/dc(t) from step t + 1, likewise
        i, f, g, o, c = cache.i, cache.f, cache.g, cache.o, cache.c
        for t in reversed(range(T)):
            dh = dh_above[t] + dh_next  # dh(t) = dh_above(t) + dz(t+1) U^T
            tanh_c = np.tanh(c[t + 1])
            dc = dc_next + dh * o[t] * (1 - tanh_c**2)  # dc(t) = dc(t+1) f(t+1) + dh o tanh'(c)
            di = dc * g[t]  # di = dc g             (c = f c(t-1) + i g)
            df = dc * c[t]  # df = dc c(t-1)
            dg = dc * i[t]  # dg = dc i
            do = dh * tanh_c  # do = dh tanh(c)     (h = o tanh(c))
            # Through the activations: sigma' = sigma (1 - sigma), tanh' = 1 - tanh^2.
            dz = np.concatenate(
                [
                    di * i[t] * (1 - i[t]),  # dz_i = di i (1 - i)
                    df * f[t] * (1 - f[t]),  # dz_f = df f (1 - f)
                    dg * (1 - g[t] ** 2),  # dz_g = dg (1 - g^2)
                    do * o[t] * (1 - o[t]),  # dz_o = do o (1 - o)
                ],
                axis=1,
            )
            dW += cache.x[t].T @ dz  # dW += x(t)^T dz     (z = x W + h(t-1) U + b)
            dU += cache.h[t].T @ dz  # dU += h(t-1)^T dz
            db += dz.sum(axis=0)  # db += sum over the batch of dz
            dx[t] = dz @ W.T  # dx(t) = dz W^T
            dh_next = dz @ U.T  # dh(t-1) = dz U^T, its share from step t
            dc_next = dc * f[t]  # dc(t-1) = dc f(t), its share from step t
        grads[f"lstm_{layer}_kernel"], grads[f"lstm_{layer}_recurrent_kernel"] = dW, dU
        grads[f"lstm_{layer}_bias"] = db
        return dx, (dh_next, dc_next)

    # -- the update -------------------------------------------------------------------------

    def clip_and_update(self, grads: Gradients, learning_rate: float) -> float:
        """Global-norm clipping (as tf.clip_by_global_norm), then plain SGD, or Adam /
        AMSGrad (``ptb_lstm.optim``) on the clipped gradient; returns the norm.

        n = sqrt(sum ||grad||^2);  grad <- grad * max_grad_norm / max(n, max_grad_norm);
        param <- param - learning_rate * grad"""
        norm = grads.global_norm()
        scale = self.config.max_grad_norm / max(norm, self.config.max_grad_norm)
        if self.adam:
            self.adam.update(self.params, grads.params, learning_rate, scale)
            return norm
        for name, grad in grads.params.items():
            self.params[name] -= self.np_dtype(learning_rate * scale) * grad
        return norm

    # -- the Engine interface ---------------------------------------------------------------

    def train_step(self, inputs, targets, learning_rate, masks=None):
        if masks is not None:
            masks = [np.asarray(m, self.np_dtype) for m in masks]
        state = self._state_for(inputs.shape[0])
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported
            grads = self.gradients(inputs, targets, state, masks)
            self.last_grad_norm = self.clip_and_update(grads, learning_rate)
        self.state = grads.final_state  # carried on, with no gradient through it
        return grads.loss

    def eval_step(self, inputs, targets):
        fwd = self.forward(inputs, self._state_for(inputs.shape[0]))
        self.state = fwd.final_state
        return float(self.nll(self.log_softmax(fwd.logits), targets.T).sum(dtype=np.float64))

    def logits(self, inputs):
        fwd = self.forward(inputs, self._state_for(inputs.shape[0]))
        self.state = fwd.final_state
        return fwd.logits.transpose(1, 0, 2)  # [B, T, V]
