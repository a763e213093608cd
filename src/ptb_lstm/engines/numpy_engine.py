"""The from-scratch NumPy engine: forward pass, back-propagation through time, clipped SGD.

Shapes: T = num_steps, B = batch size, H = hidden size, V = vocabulary size, L = layers.
Internally everything is time-major ([T, B, ...]) so that each time step is one contiguous
block. Work that does not depend on the recurrence is done as one large matrix product over
the whole [T*B] block: each layer's input projection, the softmax and the weight gradients.
Only h(t-1) @ recurrent_kernel and the elementwise gate maths run inside the loop over time.

The equations (REFERENCE.md §5), gates in the order i, f, g, o:

    z    = x(t) @ kernel + h(t-1) @ recurrent_kernel + bias        # [B, 4H]
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
    c(t) = f * c(t-1) + i * g
    h(t) = o * tanh(c(t))

Sigmoid is computed as 0.5 * tanh(0.5 z) + 0.5, which cannot overflow, so all four gates come
from one tanh over the whole [B, 4H] block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptb_lstm.engines import Engine
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

    def global_norm(self) -> float:
        squares = sum(float(np.vdot(g, g)) for g in self.dense.values())
        squares += float(np.vdot(self.embedding_grad, self.embedding_grad))
        return float(np.sqrt(squares))

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
    top: np.ndarray  # [T*B, H + 1] the top layer's output after dropout, then a column of ones
    masks: list[np.ndarray] | None  # L + 1 dropout masks [T, B, H], or None


class NumpyEngine(Engine):
    """Pure NumPy; float32 by default, float64 for gradient checks and exact comparisons."""

    name = "numpy"

    def __init__(self, config, params, dtype="float32", seed=None):
        super().__init__(config, params, dtype, seed)
        self.np_dtype = DTYPES[dtype]
        self.hidden_size = config.hidden_size
        self.num_layers = config.num_layers
        self.params: Params = {}
        self.set_params(params)
        self.rng = np.random.default_rng(self.seed)
        h = self.hidden_size
        # sigmoid(z) = 0.5 * tanh(0.5 * z) + 0.5 on the i, f, o columns; tanh(z) on g.
        self._gate_scale = np.full(4 * h, 0.5, self.np_dtype)
        self._gate_scale[2 * h:3 * h] = 1.0
        self._gate_offset = np.full(4 * h, 0.5, self.np_dtype)
        self._gate_offset[2 * h:3 * h] = 0.0
        # Derivatives from the activations' outputs: a(1 - a) = a - a^2 for the sigmoid gates,
        # 1 - a^2 for g; both are a * slope + intercept - a^2.
        self._slope = (self._gate_offset * 2).astype(self.np_dtype)  # 1 on i, f, o; 0 on g
        self._intercept = 1 - self._slope
        self.state: State = []
        self._buffers: dict[str, np.ndarray] = {}
        self.reset_state(config.batch_size)

    # -- parameters and state -------------------------------------------------------------

    def get_params(self) -> Params:
        return {name: value.copy() for name, value in self.params.items()}

    def set_params(self, params: Params) -> None:
        self.params = {name: np.array(value, dtype=self.np_dtype, order="C")
                       for name, value in params.items()}
        # The softmax kernel and bias live in one [H + 1, V] array, and the top layer's output
        # gets a column of ones, so that one product gives the logits with the bias added and
        # another gives both gradients. The canonical names are views into it.
        kernel, bias = params["softmax_kernel"], params["softmax_bias"]
        self._softmax_weights = np.empty((kernel.shape[0] + 1, kernel.shape[1]), self.np_dtype)
        self._softmax_weights[:-1] = kernel
        self._softmax_weights[-1] = bias
        self.params["softmax_kernel"] = self._softmax_weights[:-1]
        self.params["softmax_bias"] = self._softmax_weights[-1]

    def reset_state(self, batch_size: int) -> None:
        zeros = np.zeros((batch_size, self.hidden_size), self.np_dtype)
        self.state = [(zeros, zeros) for _ in range(self.num_layers)]

    def get_state(self) -> State:
        return [(h.copy(), c.copy()) for h, c in self.state]

    def set_state(self, state) -> None:
        self.state = [(np.array(h, self.np_dtype), np.array(c, self.np_dtype))
                      for h, c in state]

    def get_rng_state(self) -> dict:
        return self.rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def _state_for(self, batch_size: int) -> State:
        if self.state[0][0].shape[0] != batch_size:
            self.reset_state(batch_size)
        return self.state

    # -- the two steps ----------------------------------------------------------------------

    def train_step(self, inputs, targets, learning_rate):
        state = self._state_for(inputs.shape[0])
        masks = self._dropout_masks(*inputs.shape) if self.config.dropout > 0 else None
        # A diverging run overflows; the trainer reports it, NumPy need not warn on the way.
        with np.errstate(over="ignore", invalid="ignore"):
            grads = self.gradients(inputs, targets, state, masks)
            self.last_grad_norm = grads.global_norm()
            self._sgd(grads, learning_rate, self.last_grad_norm)
        self.state = grads.final_state
        return grads.loss

    def eval_step(self, inputs, targets):
        state = self._state_for(inputs.shape[0])
        cache, final_state = self._forward(inputs, state, masks=None)
        nll, _ = self._softmax(cache.top, targets.T.reshape(-1), grad_scale=None)
        self.state = final_state
        return nll

    def logits(self, inputs):
        state = self._state_for(inputs.shape[0])
        cache, self.state = self._forward(inputs, state, masks=None)
        logits = cache.top @ self._softmax_weights
        steps, batch = cache.inputs.shape
        return logits.reshape(steps, batch, -1).transpose(1, 0, 2)  # [B, T, V]

    # -- forward ----------------------------------------------------------------------------

    def _forward(self, inputs: np.ndarray, state: State, masks: list[np.ndarray] | None
                 ) -> tuple[_Cache, State]:
        """Run the LSTM stack over inputs [B, T]; returns the cache and the final state."""
        ids = np.ascontiguousarray(inputs.T)  # [T, B]
        steps, batch = ids.shape
        h = self.hidden_size
        x = self.params["embedding"][ids]  # [T, B, H]
        cache = _Cache(ids, [], [], [], [], [], None, masks)
        final_state: State = []
        for layer in range(self.num_layers):
            if masks is not None:
                x = x * masks[layer]
            cache.layer_inputs.append(x)
            kernel = self.params[f"lstm_{layer}_kernel"]
            recurrent = self.params[f"lstm_{layer}_recurrent_kernel"]
            bias = self.params[f"lstm_{layer}_bias"]
            # The input projection of all time steps at once: [T*B, H] @ [H, 4H].
            gates = (x.reshape(steps * batch, h) @ kernel).reshape(steps, batch, 4 * h)
            gates += bias
            outputs = np.empty((steps + 1, batch, h), self.np_dtype)  # h(-1) .. h(T-1)
            cells = np.empty((steps + 1, batch, h), self.np_dtype)
            tanh_cells = np.empty((steps, batch, h), self.np_dtype)
            outputs[0], cells[0] = state[layer]
            scale, offset = self._gate_scale, self._gate_offset
            product = np.empty((batch, 4 * h), self.np_dtype)
            input_gate = np.empty((batch, h), self.np_dtype)
            for t in range(steps):
                z = gates[t]  # [B, 4H], becomes the activated gates in place
                z += np.matmul(outputs[t], recurrent, out=product)
                z *= scale
                np.tanh(z, out=z)
                z *= scale
                z += offset
                i, f, g, o = z[:, :h], z[:, h:2 * h], z[:, 2 * h:3 * h], z[:, 3 * h:]
                c = cells[t + 1]
                np.multiply(f, cells[t], out=c)
                c += np.multiply(i, g, out=input_gate)
                np.tanh(c, out=tanh_cells[t])
                np.multiply(o, tanh_cells[t], out=outputs[t + 1])
            cache.gates.append(gates)
            cache.cells.append(cells)
            cache.outputs.append(outputs)
            cache.tanh_cells.append(tanh_cells)
            final_state.append((outputs[steps].copy(), cells[steps].copy()))
            x = outputs[1:]
        if masks is not None:
            x = x * masks[self.num_layers]
        cache.top = np.empty((steps * batch, h + 1), self.np_dtype)
        cache.top[:, :h] = x.reshape(steps * batch, h)
        cache.top[:, h] = 1.0
        return cache, final_state

    def _softmax(self, top: np.ndarray, targets: np.ndarray, grad_scale: float | None
                 ) -> tuple[float, np.ndarray | None]:
        """Summed NLL of ``targets`` [N] under softmax(top [N, H + 1] @ [kernel; bias]).

        With ``grad_scale`` the logits buffer is turned into d loss / d logits (scaled by
        ``grad_scale``), d loss / d top [N, H] is returned and the buffer is kept for the
        weight gradients."""
        kernel = self.params["softmax_kernel"]
        logits = self._buffer("logits", (top.shape[0], self.vocab_size))  # [N, V]
        np.matmul(top, self._softmax_weights, out=logits)
        nll = _softmax_nll_in_place(logits, targets, grad_scale, top, self._softmax_weights)
        dtop = logits @ kernel.T if grad_scale is not None else None  # [N, H]
        return nll, dtop

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A scratch array reused from step to step (no fresh pages to fault in each time)."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape:
            buffer = self._buffers[name] = np.empty(shape, self.np_dtype)
        return buffer

    def _dropout_masks(self, batch: int, steps: int) -> list[np.ndarray]:
        """Inverted-dropout masks for the non-recurrent connections: the embedding output,
        between layers, and the top output; kept units are scaled by 1 / (1 - p)."""
        keep = 1.0 - self.config.dropout
        shape = (steps, batch, self.hidden_size)
        return [(self.rng.random(shape, dtype=self.np_dtype) < keep).astype(self.np_dtype)
                / self.np_dtype(keep) for _ in range(self.num_layers + 1)]

    # -- backward ---------------------------------------------------------------------------

    def gradients(self, inputs: np.ndarray, targets: np.ndarray, state: State,
                  masks: list[np.ndarray] | None = None) -> Gradients:
        """Loss and its exact gradient for one batch, by back-propagation through time over
        the num_steps of the batch; nothing flows into the incoming state (truncated BPTT),
        but its gradient is reported for checks. Parameters are not changed."""
        cache, final_state = self._forward(inputs, state, masks)
        steps, batch = cache.inputs.shape
        h = self.hidden_size
        dense: dict[str, np.ndarray] = {}

        # Softmax and cross-entropy. The loss is summed over time and averaged over the batch,
        # so every row's gradient (p - onehot) is scaled by 1 / B.
        flat_targets = targets.T.reshape(-1)
        nll, dtop = self._softmax(cache.top, flat_targets, grad_scale=1.0 / batch)
        loss = nll / batch
        dlogits = self._buffers["logits"]  # [T*B, V]
        softmax_grad = cache.top.T @ dlogits  # [H + 1, V]: kernel rows, then the bias
        dense["softmax_kernel"], dense["softmax_bias"] = softmax_grad[:-1], softmax_grad[-1]
        dx = dtop.reshape(steps, batch, h)
        if masks is not None:
            dx *= masks[self.num_layers]

        state_grad: State = [None] * self.num_layers  # type: ignore[list-item]
        for layer in reversed(range(self.num_layers)):
            dgates, dh0, dc0 = self._backward_through_time(layer, cache, dx)
            state_grad[layer] = (dh0, dc0)
            flat_dgates = dgates.reshape(steps * batch, 4 * h)
            x = cache.layer_inputs[layer].reshape(steps * batch, h)
            h_prev = cache.outputs[layer][:-1].reshape(steps * batch, h)
            dense[f"lstm_{layer}_kernel"] = x.T @ flat_dgates
            dense[f"lstm_{layer}_recurrent_kernel"] = h_prev.T @ flat_dgates
            dense[f"lstm_{layer}_bias"] = _column_sums(flat_dgates)
            dx = (flat_dgates @ self.params[f"lstm_{layer}_kernel"].T).reshape(steps, batch, h)
            if masks is not None:
                dx *= masks[layer]

        rows, row_grads = _sum_rows(cache.inputs.reshape(-1), dx.reshape(steps * batch, h))
        return Gradients(loss, dense, rows, row_grads, state_grad, final_state)

    def _backward_through_time(self, layer: int, cache: _Cache, dh_above: np.ndarray
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """d loss / d z for every step of one layer [T, B, 4H], and d loss / d (h0, c0).

        With a = the activated gates and a' their derivatives (a(1 - a) for i, f, o and
        1 - g^2 for g), going back in time:
            dh = dh_above(t) + dh(t+1) from the recurrence
            dc = dh * o * (1 - tanh(c)^2) + dc(t+1)
            dz = [dc * g * i', dc * c(t-1) * f', dc * i * g', dh * tanh(c) * o']
            dc(t-1) = dc * f,   dh(t-1) = dz @ recurrent_kernel^T
        Every factor that does not depend on the recurrence is computed for all steps at once
        before the loop, which leaves six small operations and one product per step."""
        h = self.hidden_size
        gates = cache.gates[layer]  # [T, B, 4H]
        cells = cache.cells[layer]  # [T + 1, B, H], cells[t] is c(t-1)
        tanh_cells = cache.tanh_cells[layer]  # [T, B, H]
        steps, batch = gates.shape[:2]
        # a' = a * slope + intercept - a^2, then the per-gate factors of dz.
        factors = gates * self._slope
        factors += self._intercept
        factors -= gates * gates
        factors[..., :h] *= gates[..., 2 * h:3 * h]  # g * i'
        factors[..., h:2 * h] *= cells[:-1]  # c(t-1) * f'
        factors[..., 2 * h:3 * h] *= gates[..., :h]  # i * g'
        factors[..., 3 * h:] *= tanh_cells  # tanh(c) * o'
        dc_from_dh = 1.0 - tanh_cells * tanh_cells
        dc_from_dh *= gates[..., 3 * h:]  # o * (1 - tanh(c)^2)
        forget = gates[..., h:2 * h]
        recurrent_t = np.ascontiguousarray(self.params[f"lstm_{layer}_recurrent_kernel"].T)
        dgates = np.empty_like(gates)
        dh_next = np.zeros((batch, h), self.np_dtype)
        dc_next = np.zeros((batch, h), self.np_dtype)
        dc = np.empty((batch, h), self.np_dtype)
        for t in reversed(range(steps)):
            dh = dh_above[t] + dh_next
            np.multiply(dh, dc_from_dh[t], out=dc)
            dc += dc_next
            d = dgates[t]  # [B, 4H]
            np.multiply(factors[t, :, :3 * h].reshape(batch, 3, h), dc[:, None, :],
                        out=d[:, :3 * h].reshape(batch, 3, h))
            np.multiply(dh, factors[t, :, 3 * h:], out=d[:, 3 * h:])
            dc_next = dc * forget[t]
            dh_next = d @ recurrent_t
        return dgates, dh_next, dc_next

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


def _softmax_nll_in_place(logits: np.ndarray, targets: np.ndarray, grad_scale: float | None,
                          top: np.ndarray, weights: np.ndarray) -> float:
    """Summed NLL of ``targets`` [N] under softmax(logits [N, V]), in float64, where
    logits = top [N, H + 1] @ weights [H + 1, V].

    With ``grad_scale`` the logits are overwritten with grad_scale * (softmax - onehot), the
    gradient of grad_scale * NLL; otherwise with scratch values.

    exp(logit) is summed without subtracting each row's maximum first (which would cost two
    passes over [N, V]) as long as the row's sum stays within (1e-20, 1e30), where float32
    neither overflows nor loses the terms that matter; a row outside it (or not finite) is
    recomputed from ``top`` with its maximum subtracted."""
    rows = np.arange(logits.shape[0])
    target_logit = logits[rows, targets].astype(np.float64)
    with np.errstate(over="ignore"):  # an overflowing row is caught below and recomputed
        np.exp(logits, out=logits)
    sums = logits.sum(axis=1)  # [N]
    bad = np.flatnonzero(~((sums > _SUM_LOW) & (sums < _SUM_HIGH)))  # also inf and nan
    shift = None
    if bad.size:
        fresh = top[bad] @ weights  # those rows' logits again
        shift = fresh.max(axis=1)
        fresh -= shift[:, None]
        np.exp(fresh, out=fresh)
        logits[bad] = fresh
        sums[bad] = fresh.sum(axis=1)
    nll = np.log(sums.astype(np.float64)) - target_logit
    if shift is not None:
        nll[bad] += shift
    if grad_scale is not None:
        logits *= (grad_scale / sums)[:, None].astype(logits.dtype)
        logits[rows, targets] -= logits.dtype.type(grad_scale)
    return float(nll.sum())


# Below 1e-20 the terms under float32's smallest normal number (1.2e-38, at most V of them),
# which lose precision or vanish, could matter at float32 precision; above 1e30 the sum nears
# overflow.
_SUM_LOW, _SUM_HIGH = 1e-20, 1e30


def _column_sums(matrix: np.ndarray) -> np.ndarray:
    """Sum over rows of [N, K] as a matrix-vector product: BLAS does it several times faster
    than a reduction along axis 0."""
    return np.ones(matrix.shape[0], matrix.dtype) @ matrix


def _sum_rows(ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``ids`` [R] and the sums [R, H] of the ``rows`` [N, H] that share each id."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    return sorted_ids[starts], np.add.reduceat(rows[order], starts, axis=0)
