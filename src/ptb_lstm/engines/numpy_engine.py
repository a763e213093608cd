"""The from-scratch NumPy engine: forward pass, back-propagation through time, clipped SGD.

Shapes: T = num_steps, B = batch size, H = hidden size, V = vocabulary size, L = layers.
Internally everything is time-major ([T, B, ...]) so that each time step is one contiguous
block. Work that does not depend on the recurrence is done as one large matrix product over
the whole [T*B] block: each layer's input projection, the softmax and the weight gradients.
Only h(t-1) @ recurrent_kernel and the elementwise gate maths run inside the loop over time.

The equations (docs/model.md §3), gates in the order i, f, g, o:

    z    = x(t) @ kernel + h(t-1) @ recurrent_kernel + bias        # [B, 4H]
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
    c(t) = f * c(t-1) + i * g
    h(t) = o * tanh(c(t))

Sigmoid is computed as 0.5 * tanh(0.5 z) + 0.5, which cannot overflow, so all four gates come
from one tanh over the whole [B, 4H] block.

What is here for speed is only what a side-by-side run showed to gain at least 5% of a training
step at some size (docs/performance.md): the products over all time steps, the per-time-step
products with the weights as the left operand, the large arrays of a step kept and reused from
step to step, the sparse embedding update and the one tanh for the gates; and the global norm
by blocked dot products, below that bar but shorter than what it replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ptb_lstm.engines import Engine
from ptb_lstm.optim import NumpyAdam
from ptb_lstm.params import DTYPES, Params

State = list[tuple[np.ndarray, np.ndarray]]  # per layer: (h [B, H], c [B, H])


@dataclass
class Gradients:
    """Everything one backward pass produces."""

    loss: float  # summed over time, mean over the batch
    dense: dict[str, np.ndarray]  # every parameter but the embedding
    embedding_rows: np.ndarray  # [R] distinct input ids of the batch
    embedding_grad: np.ndarray  # [R, H] their gradient rows
    state_grad: State  # d loss / d (h0, c0) of every layer
    final_state: State
    vocab_size: int = 0  # V, the rows of the embedding's dense gradient (by_name)
    names: tuple[str, ...] = ()  # the canonical names in their order (by_name)

    def global_norm(self) -> float:
        return float(np.sqrt(_sum_of_squares([*self.dense.values(), self.embedding_grad])))

    def by_name(self) -> Params:
        """Every gradient dense, in the canonical order (for checks, not for training)."""
        dense = {"embedding": self.dense_embedding(self.vocab_size), **self.dense}
        return {name: dense[name] for name in self.names}

    def dense_embedding(self, vocab_size: int) -> np.ndarray:
        """The embedding gradient as a full [V, H] array (for checks, not for training)."""
        full = np.zeros((vocab_size, self.embedding_grad.shape[1]), self.embedding_grad.dtype)
        full[self.embedding_rows] = self.embedding_grad
        return full


@dataclass
class _Cache:
    """What the forward pass keeps for the backward pass."""

    inputs: np.ndarray  # [T, B] ids
    layer_inputs: list[np.ndarray]  # per layer [T, B, H], after dropout
    gates: list[np.ndarray]  # per layer [T, B, 4H], activated i, f, g, o
    cells: list[np.ndarray]  # per layer [T + 1, B, H], c(-1) .. c(T-1)
    outputs: list[np.ndarray]  # per layer [T + 1, B, H], h(-1) .. h(T-1)
    tanh_cells: list[np.ndarray]  # per layer [T, B, H]
    top: np.ndarray  # [T*B, H] the top layer's output after dropout
    masks: list[np.ndarray] | None  # L + 1 dropout masks [T, B, H], or None


class NumpyEngine(Engine):
    """Pure NumPy; float32 by default, float64 for gradient checks and exact comparisons."""

    name = "numpy"

    def __init__(self, config, params, dtype="float32", device="auto"):
        super().__init__(config, params, dtype, device)
        self.np_dtype = DTYPES[dtype]
        self.hidden_size = config.hidden_size
        self.num_layers = config.num_layers
        self.params: Params = {}
        self.set_params(params)
        h = self.hidden_size
        # sigmoid(z) = 0.5 * tanh(0.5 * z) + 0.5 on the i, f, o columns; tanh(z) on g.
        self._gate_scale = np.full(4 * h, 0.5, self.np_dtype)
        self._gate_scale[2 * h : 3 * h] = 1.0
        self._gate_offset = np.full(4 * h, 0.5, self.np_dtype)
        self._gate_offset[2 * h : 3 * h] = 0.0
        self._buffers: dict[str, np.ndarray] = {}
        self.reset_state(config.batch_size)
        # Adam and AMSGrad keep moments per parameter; the paper's SGD keeps nothing.
        self.adam = (
            None if config.optimizer == "sgd" else NumpyAdam(config, self.vocab_size, self.np_dtype)
        )

    # -- parameters and the optimizer's state ----------------------------------------------

    def get_params(self) -> Params:
        return {name: value.copy() for name, value in self.params.items()}

    def set_params(self, params: Params) -> None:
        self.params = {
            name: np.array(value, dtype=self.np_dtype, order="C") for name, value in params.items()
        }

    def get_optimizer_state(self) -> dict[str, np.ndarray]:
        return self.adam.get_state() if self.adam else {}

    def set_optimizer_state(self, state) -> None:
        if self.adam:
            self.adam.set_state(state)

    # -- the two steps ----------------------------------------------------------------------

    def train_step(self, inputs, targets, learning_rate, masks=None):
        state = self._state_for(inputs.shape[0])
        if masks is not None:
            masks = [np.ascontiguousarray(m, self.np_dtype) for m in masks]
        # A diverging run overflows; the trainer reports it, NumPy need not warn on the way.
        with np.errstate(over="ignore", invalid="ignore"):
            grads = self.gradients(inputs, targets, state, masks, reuse=True)
            self.last_grad_norm = grads.global_norm()
            if self.adam:
                self._adam(grads, learning_rate, self.last_grad_norm)
            else:
                self._sgd(grads, learning_rate, self.last_grad_norm)
        self.state = grads.final_state
        return grads.loss

    def eval_step(self, inputs, targets):
        state = self._state_for(inputs.shape[0])
        cache, self.state = self._forward(inputs, state, None)
        logits = self._logits(cache.top)
        rows = np.ascontiguousarray(targets.T).reshape(-1)  # time-major, as the rows of top
        return _softmax_nll_in_place(logits, rows, None)

    def logits(self, inputs):
        state = self._state_for(inputs.shape[0])
        cache, self.state = self._forward(inputs, state, None)
        logits = self._logits(cache.top).copy()
        steps, batch = cache.inputs.shape
        return logits.reshape(steps, batch, -1).transpose(1, 0, 2)  # [B, T, V]

    def _logits(self, top: np.ndarray) -> np.ndarray:
        """top [T*B, H] @ kernel + bias into a buffer reused from step to step."""
        logits = self._buffer("logits", (top.shape[0], self.vocab_size))
        np.matmul(top, self.params["softmax_kernel"], out=logits)
        logits += self.params["softmax_bias"]
        return logits

    # -- forward ----------------------------------------------------------------------------

    def _forward(
        self, inputs: np.ndarray, state: State, masks: list[np.ndarray] | None
    ) -> tuple[_Cache, State]:
        """Run the LSTM stack over inputs [B, T]; returns the cache and the final state. Each
        layer's input projection is one product over all T*B rows; then its recurrence."""
        ids = np.ascontiguousarray(inputs.T)  # [T, B]
        steps, batch = ids.shape
        h = self.hidden_size
        x = np.take(
            self.params["embedding"], ids, axis=0, out=self._buffer("x0", (steps, batch, h))
        )
        if masks is not None:
            x *= masks[0]
        layer_inputs: list[np.ndarray] = []
        gates: list[np.ndarray] = []
        cells: list[np.ndarray] = []
        outputs: list[np.ndarray] = []
        tanh_cells: list[np.ndarray] = []
        for layer in range(self.num_layers):
            if layer > 0:  # the layer below's output after dropout
                x = self._buffer(f"x{layer}", (steps, batch, h))
                if masks is None:
                    np.copyto(x, outputs[-1][1:])
                else:
                    np.multiply(outputs[-1][1:], masks[layer], out=x)
            z = self._buffer(f"gates{layer}", (steps * batch, 4 * h))
            np.matmul(x.reshape(steps * batch, h), self.params[f"lstm_{layer}_kernel"], out=z)
            z += self.params[f"lstm_{layer}_bias"]
            layer_inputs.append(x)
            gates.append(z.reshape(steps, batch, 4 * h))
            cells.append(self._buffer(f"cells{layer}", (steps + 1, batch, h)))
            outputs.append(self._buffer(f"outputs{layer}", (steps + 1, batch, h)))
            tanh_cells.append(self._buffer(f"tanh_cells{layer}", (steps, batch, h)))
            outputs[-1][0], cells[-1][0] = state[layer]
            self._recur(layer, gates[-1], cells[-1], outputs[-1], tanh_cells[-1])
        # The top layer's output after dropout.
        top = self._buffer("top", (steps * batch, h))
        if masks is None:
            np.copyto(top, outputs[-1][1:].reshape(-1, h))
        else:
            np.multiply(outputs[-1][1:].reshape(-1, h), masks[-1].reshape(-1, h), out=top)
        cache = _Cache(ids, layer_inputs, gates, cells, outputs, tanh_cells, top, masks)
        return cache, [
            (o[steps].copy(), c[steps].copy()) for o, c in zip(outputs, cells, strict=True)
        ]

    def _recur(
        self,
        layer: int,
        gates: np.ndarray,
        cells: np.ndarray,
        outputs: np.ndarray,
        tanh_cells: np.ndarray,
    ) -> None:
        """Every time step of one layer: ``gates`` [T, B, 4H] holds the input projections and
        becomes the activated gates in place; fills ``cells`` and ``outputs`` [T + 1, B, H]
        from their first row (the incoming state), and ``tanh_cells`` [T, B, H]."""
        h = self.hidden_size
        # The weights as the left operand: (U^T h^T)^T, [4H, H] x [H, B], is h U computed by a
        # faster BLAS path for B << H (weights first).
        recurrent_t = self._buffer("recurrent_t", (4 * h, h))
        np.copyto(recurrent_t, self.params[f"lstm_{layer}_recurrent_kernel"].T)
        scale, offset = self._gate_scale, self._gate_offset
        batch = gates.shape[1]
        product = np.empty((4 * h, batch), self.np_dtype)
        input_gate = np.empty((batch, h), self.np_dtype)
        for t in range(gates.shape[0]):
            z = gates[t]  # [B, 4H]
            z += np.matmul(recurrent_t, outputs[t].T, out=product).T
            z *= scale
            np.tanh(z, out=z)
            z *= scale
            z += offset
            i, f, g, o = z[:, :h], z[:, h : 2 * h], z[:, 2 * h : 3 * h], z[:, 3 * h :]
            c = cells[t + 1]
            np.multiply(f, cells[t], out=c)
            c += np.multiply(i, g, out=input_gate)
            np.tanh(c, out=tanh_cells[t])
            np.multiply(o, tanh_cells[t], out=outputs[t + 1])

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A scratch array reused from step to step: a fresh one of many megabytes is new
        pages for the operating system to fault in and zero, each step."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape:
            buffer = self._buffers[name] = np.empty(shape, self.np_dtype)
        return buffer

    # -- backward ---------------------------------------------------------------------------

    def gradients(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        state: State,
        masks: list[np.ndarray] | None = None,
        reuse: bool = False,
    ) -> Gradients:
        """Loss and its exact gradient for one batch, by back-propagation through time over
        the num_steps of the batch; nothing flows into the incoming state (truncated BPTT),
        but its gradient is reported for checks. Parameters are not changed.

        With ``reuse`` the weight gradients are written into arrays the engine keeps, which
        the next call overwrites (the training step, which uses them at once); without, they
        are new arrays the caller may keep."""
        out = self._gradient_buffer if reuse else _new_array
        batch = inputs.shape[0]
        cache, final_state = self._forward(inputs, state, masks)
        steps, h = cache.inputs.shape[0], self.hidden_size
        # Softmax and cross-entropy over all T*B rows at once. The loss is summed over time
        # and averaged over the batch, so every row's gradient (p - onehot) is scaled by 1 / B.
        dlogits = self._logits(cache.top)
        rows = np.ascontiguousarray(targets.T).reshape(-1)  # time-major, as the rows of top
        nll = _softmax_nll_in_place(dlogits, rows, 1.0 / batch)  # dlogits: d loss / d logits
        kernel = self.params["softmax_kernel"]
        dense = {
            "softmax_kernel": np.matmul(cache.top.T, dlogits, out=out("softmax_kernel")),
            # Column sums as a product: BLAS does it several times faster than a reduction.
            "softmax_bias": np.ones(len(dlogits), self.np_dtype) @ dlogits,
        }
        dx = np.matmul(dlogits, kernel.T, out=self._buffer("dx", (steps * batch, h)))
        dx = dx.reshape(steps, batch, h)
        if masks is not None:
            dx *= masks[self.num_layers]
        state_grad, embedding_rows, embedding_grad = self._lstm_gradients(cache, dx, dense, out)
        return Gradients(
            nll / batch,
            dense,
            embedding_rows,
            embedding_grad,
            state_grad,
            final_state,
            self.vocab_size,
            tuple(self.params),
        )

    def _gradient_buffer(self, name: str) -> np.ndarray:
        """The array the gradient of parameter ``name`` is written into, kept by the engine."""
        return self._buffer(f"gradient of {name}", self.params[name].shape)

    def _lstm_gradients(
        self,
        cache: _Cache,
        dx: np.ndarray,
        dense: dict[str, np.ndarray],
        out: Callable[[str], np.ndarray | None],
    ) -> tuple[State, np.ndarray, np.ndarray]:
        """Back-propagation through time from d loss / d top output ``dx`` [T, B, H], top
        layer first; each layer's weight gradients go into ``dense`` as one product over all
        T*B rows. Returns d loss / d (h0, c0) of every layer, and the embedding gradient as
        the distinct input ids [R] and their rows [R, H]."""
        steps, batch = cache.inputs.shape
        h = self.hidden_size
        state_grad: State = [None] * self.num_layers  # type: ignore[list-item]
        for layer in reversed(range(self.num_layers)):
            dgates, dh0, dc0 = self._backward_through_time(layer, cache, dx)
            state_grad[layer] = (dh0, dc0)
            flat_dgates = dgates.reshape(steps * batch, 4 * h)
            x = cache.layer_inputs[layer].reshape(steps * batch, h)
            h_prev = cache.outputs[layer][:-1].reshape(steps * batch, h)
            for name, rows in (("kernel", x), ("recurrent_kernel", h_prev)):
                name = f"lstm_{layer}_{name}"
                dense[name] = np.matmul(rows.T, flat_dgates, out=out(name))
            # The bias gradient is the column sums, as a product: BLAS does it several times
            # faster than a reduction along axis 0.
            dense[f"lstm_{layer}_bias"] = np.ones(steps * batch, self.np_dtype) @ flat_dgates
            kernel = self.params[f"lstm_{layer}_kernel"]
            dx = np.matmul(flat_dgates, kernel.T, out=self._buffer("dx", (steps * batch, h)))
            if cache.masks is not None:
                dx *= cache.masks[layer].reshape(steps * batch, h)
            dx = dx.reshape(steps, batch, h)
        ids, rows = _sum_rows(cache.inputs.reshape(-1), dx.reshape(steps * batch, h))
        return state_grad, ids, rows

    def _backward_through_time(
        self, layer: int, cache: _Cache, dh_above: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """d loss / d z for every step of one layer [T, B, 4H], and d loss / d (h0, c0).

        With a = the activated gates and a' their derivatives (a(1 - a) for i, f, o and
        1 - g^2 for g), going back in time:
            dh = dh_above(t) + dh(t+1) from the recurrence
            dc = dh * o * (1 - tanh(c)^2) + dc(t+1)
            dz = [dc * g * i', dc * c(t-1) * f', dc * i * g', dh * tanh(c) * o']
            dc(t-1) = dc * f,   dh(t-1) = dz @ recurrent_kernel^T
        Each line of the loop below is one of these."""
        h = self.hidden_size
        gates = cache.gates[layer]  # [T, B, 4H]
        cells = cache.cells[layer]  # [T + 1, B, H], cells[t] is c(t-1)
        tanh_cells = cache.tanh_cells[layer]  # [T, B, H]
        steps, batch = gates.shape[:2]
        recurrent = self.params[f"lstm_{layer}_recurrent_kernel"]  # [H, 4H]
        dgates = self._buffer("dgates", gates.shape)
        dh_product = np.empty((h, batch), self.np_dtype)  # (dz U^T)^T = U dz^T, weights first
        dh_next = np.zeros((batch, h), self.np_dtype)
        dc_next = np.zeros((batch, h), self.np_dtype)
        dc = np.empty((batch, h), self.np_dtype)
        for t in reversed(range(steps)):
            a = gates[t]
            i, f, g, o = a[:, :h], a[:, h : 2 * h], a[:, 2 * h : 3 * h], a[:, 3 * h :]
            dh = dh_above[t] + dh_next
            np.multiply(dh, o * (1.0 - tanh_cells[t] * tanh_cells[t]), out=dc)
            dc += dc_next
            d = dgates[t]  # [B, 4H]
            np.multiply(dc, g * i * (1 - i), out=d[:, :h])  # dc * g * i'
            np.multiply(dc, cells[t] * f * (1 - f), out=d[:, h : 2 * h])  # dc * c(t-1) * f'
            np.multiply(dc, i * (1 - g * g), out=d[:, 2 * h : 3 * h])  # dc * i * g'
            np.multiply(dh, tanh_cells[t] * o * (1 - o), out=d[:, 3 * h :])  # dh * tanh(c) * o'
            dc_next = dc * f
            dh_next = np.matmul(recurrent, d.T, out=dh_product).T
        return dgates, dh_next.copy(), dc_next

    # -- update -----------------------------------------------------------------------------

    def _sgd(self, grads: Gradients, learning_rate: float, norm: float) -> None:
        """Clip by global norm (as tf.clip_by_global_norm), then plain SGD; the embedding gets
        a sparse update of only the rows the batch used."""
        max_norm = self.config.max_grad_norm
        step = self.np_dtype(learning_rate * max_norm / max(norm, max_norm))
        for name, grad in grads.dense.items():
            grad *= step
            self.params[name] -= grad
        grads.embedding_grad *= step
        self.params["embedding"][grads.embedding_rows] -= grads.embedding_grad

    def _adam(self, grads: Gradients, learning_rate: float, norm: float) -> None:
        """Clip by global norm, then Adam or AMSGrad (``ptb_lstm.optim``). Its update is
        dense: rows of the embedding the batch did not use still move by their momentum."""
        max_norm = self.config.max_grad_norm
        dense = {**grads.dense, "embedding": grads.dense_embedding(self.vocab_size)}
        self.adam.update(self.params, dense, learning_rate, max_norm / max(norm, max_norm))


def _new_array(name: str) -> None:
    """No array to write into: the product makes a new one."""
    return None


def _softmax_nll_in_place(
    logits: np.ndarray, targets: np.ndarray, grad_scale: float | None
) -> float:
    """Summed NLL of ``targets`` [N] under softmax(logits [N, V]), in float64.

    With ``grad_scale`` the logits are overwritten with grad_scale * (softmax - onehot), the
    gradient of grad_scale * NLL; otherwise with scratch values. Each row's maximum is
    subtracted before exp, so that no row overflows or vanishes in float32."""
    rows = np.arange(logits.shape[0])
    shift = logits.max(axis=1)
    logits -= shift[:, None]
    target_logit = logits[rows, targets].astype(np.float64)
    np.exp(logits, out=logits)
    sums = logits.sum(axis=1)  # [N], each at least 1
    nll = np.log(sums.astype(np.float64)) - target_logit
    if grad_scale is not None:
        logits *= (grad_scale / sums)[:, None].astype(logits.dtype)
        logits[rows, targets] -= logits.dtype.type(grad_scale)
    return float(nll.sum())


# The sum of squares goes through the gradients in blocks this long (64 kB).
_BLOCK = 1 << 14


def _sum_of_squares(arrays: list[np.ndarray]) -> float:
    """sum(a * a) over every entry of ``arrays``, as accurate in float32 as NumPy's pairwise
    summation: a dot product per block of 16,384 entries, and the blocks' sums in float64.
    (One float32 dot product over a whole array, np.vdot(a, a), was 1.6e-5 off on the medium
    config's gradients and 7.6e-5 on the large one's, a clipping scale off by as much; in
    blocks this short it is within 1e-8, and half the time of squaring then summing.)"""
    total = 0.0
    for array in arrays:
        flat = array.reshape(-1)
        for start in range(0, flat.size, _BLOCK):
            part = flat[start : start + _BLOCK]
            total += float(np.vdot(part, part))
    return total


def _sum_rows(ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``ids`` [R] and the sums [R, H] of the ``rows`` [N, H] that share each id.

    Most ids of a batch occur once: their rows are gathered, and only the further rows of
    repeated ids are summed (np.add.reduceat pays for every group, even of one row)."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    first = np.empty(len(ids), bool)  # the first of each id in sorted order
    first[:1] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=first[1:])
    sums = rows[order[first]]
    further = np.flatnonzero(~first)
    if further.size:
        group = np.cumsum(first)[further] - 1  # the distinct id each further row belongs to
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        sums[group[starts]] += np.add.reduceat(rows[order[further]], starts, axis=0)
    return sorted_ids[first], sums
