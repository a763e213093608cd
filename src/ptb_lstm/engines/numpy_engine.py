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

Threads: up to a hidden size of _THREADED_HIDDEN_MAX (256) a step runs its large products on
Python helper threads and holds OpenBLAS to one thread meanwhile (engines/_blas_threads.py).
OpenBLAS's thread count is global to the process, so during a step any other thread of the
process gets one BLAS thread per product too; the count is restored when the step ends, even
by an exception. Run several trainings at once as separate processes, not as threads of one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ptb_lstm.engines import Engine
from ptb_lstm.engines._blas_threads import BlasThreads, Work
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
    top: np.ndarray  # [T*B, H + 1] the top layer's output after dropout, then a column of ones
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
        # Derivatives from the activations' outputs: a(1 - a) = a - a^2 for the sigmoid gates,
        # 1 - a^2 for g; both are a * slope + intercept - a^2.
        self._slope = (self._gate_offset * 2).astype(self.np_dtype)  # 1 on i, f, o; 0 on g
        self._intercept = 1 - self._slope
        self._buffers: dict[str, np.ndarray] = {}
        self._threads = BlasThreads()
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
        # The softmax kernel and bias live in one [H + 1, V] array, and the top layer's output
        # gets a column of ones, so that one product gives the logits with the bias added and
        # another gives both gradients. The canonical names are views into it.
        kernel, bias = params["softmax_kernel"], params["softmax_bias"]
        self._softmax_weights = np.empty((kernel.shape[0] + 1, kernel.shape[1]), self.np_dtype)
        self._softmax_weights[:-1] = kernel
        self._softmax_weights[-1] = bias
        self.params["softmax_kernel"] = self._softmax_weights[:-1]
        self.params["softmax_bias"] = self._softmax_weights[-1]

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
            grads = self.gradients(inputs, targets, state, masks)
            self.last_grad_norm = grads.global_norm()
            if self.adam:
                self._adam(grads, learning_rate, self.last_grad_norm)
            else:
                self._sgd(grads, learning_rate, self.last_grad_norm)
        self.state = grads.final_state
        return grads.loss

    def eval_step(self, inputs, targets):
        state = self._state_for(inputs.shape[0])
        with self._split() as work:
            softmax = _SoftmaxRows(self, targets, grad_scale=None, work=work)
            _, final_state = self._forward(inputs, state, None, work, softmax.put)
            work.drain()
        self.state = final_state
        return softmax.nll()

    def logits(self, inputs):
        state = self._state_for(inputs.shape[0])
        with self._split() as work:
            cache, self.state = self._forward(inputs, state, None, work)
        logits = cache.top @ self._softmax_weights
        steps, batch = cache.inputs.shape
        return logits.reshape(steps, batch, -1).transpose(1, 0, 2)  # [B, T, V]

    def _split(self):
        """The step's Work: with helper threads (BLAS at one thread each) up to a hidden size
        of _THREADED_HIDDEN_MAX; above it (the medium and large configs) the recurrence's
        products are large enough that BLAS's own threads do better, and every product runs
        whole on them (measured in docs/performance.md)."""
        return self._threads.split(enabled=self.hidden_size <= _THREADED_HIDDEN_MAX)

    # -- forward ----------------------------------------------------------------------------

    def _forward(
        self,
        inputs: np.ndarray,
        state: State,
        masks: list[np.ndarray] | None,
        work: Work,
        top_ready: Callable[[np.ndarray, int, int], None] | None = None,
    ) -> tuple[_Cache, State]:
        """Run the LSTM stack over inputs [B, T]; returns the cache and the final state.

        The time steps go in blocks: each layer's input projection is one product per block
        (queued on ``work`` as soon as the layer below has produced the block), and once the
        top layer has produced a block, ``top_ready(top, first_row, end_row)`` is called with
        its rows of the softmax input. Without helper threads a block is every step."""
        ids = np.ascontiguousarray(inputs.T)  # [T, B]
        steps, batch = ids.shape
        h, layers, dtype = self.hidden_size, self.num_layers, self.np_dtype
        block = _BLOCK_STEPS if work.helpers else steps
        blocks = [(first, min(first + block, steps)) for first in range(0, steps, block)]
        embedded = self.params["embedding"][ids]  # [T, B, H]
        if masks is not None:
            embedded *= masks[0]

        def arrays(rows: int, width: int) -> list[np.ndarray]:
            return [np.empty((rows, batch, width), dtype) for _ in range(layers)]

        # The top layer's output after dropout, then a column of ones for the softmax bias.
        top = np.empty((steps * batch, h + 1), dtype)
        top[:, h] = 1.0
        cache = _Cache(
            ids,
            [embedded] + arrays(steps, h)[1:],
            gates=arrays(steps, 4 * h),
            cells=arrays(steps + 1, h),
            outputs=arrays(steps + 1, h),
            tanh_cells=arrays(steps, h),
            top=top,
            masks=masks,
        )

        def project(layer: int, first: int, end: int) -> None:
            """The input projection x(t) @ kernel + bias of steps first .. end - 1."""
            x = cache.layer_inputs[layer][first:end]
            if layer > 0:  # the layer below's output after dropout
                np.copyto(x, cache.outputs[layer - 1][first + 1 : end + 1])
                if masks is not None:
                    x *= masks[layer][first:end]
            gates = cache.gates[layer][first:end].reshape((end - first) * batch, 4 * h)
            np.matmul(
                x.reshape((end - first) * batch, h), self.params[f"lstm_{layer}_kernel"], out=gates
            )
            gates += self.params[f"lstm_{layer}_bias"]

        for layer in range(layers):
            cache.outputs[layer][0], cache.cells[layer][0] = state[layer]
        projections = {
            (0, b): work.put(functools.partial(project, 0, *span)) for b, span in enumerate(blocks)
        }
        # A wavefront: at round k, layer l runs block k - l, so the top layer's first rows
        # (and the softmax on them) come early, and each projection is computed by a helper
        # while this thread runs the other layers' steps.
        for k in range(len(blocks) + layers - 1):
            for layer in range(layers):
                b = k - layer
                if not 0 <= b < len(blocks):
                    continue
                first, end = blocks[b]
                projections.pop((layer, b)).wait()
                self._recur(cache, layer, first, end)
                if layer + 1 < layers:
                    projections[layer + 1, b] = work.put(
                        functools.partial(project, layer + 1, first, end)
                    )
                    continue
                rows = slice(first * batch, end * batch)
                top[rows, :h] = cache.outputs[layer][first + 1 : end + 1].reshape(-1, h)
                if masks is not None:
                    top[rows, :h] *= masks[layers][first:end].reshape(-1, h)
                if top_ready is not None:
                    top_ready(top, rows.start, rows.stop)
        final_state = [
            (cache.outputs[layer][steps].copy(), cache.cells[layer][steps].copy())
            for layer in range(layers)
        ]
        return cache, final_state

    def _recur(self, cache: _Cache, layer: int, first: int, end: int) -> None:
        """Steps first .. end - 1 of one layer, from its input projections in cache.gates,
        which become the activated gates in place."""
        h = self.hidden_size
        recurrent = self.params[f"lstm_{layer}_recurrent_kernel"]
        gates, outputs = cache.gates[layer], cache.outputs[layer]
        cells, tanh_cells = cache.cells[layer], cache.tanh_cells[layer]
        scale, offset = self._gate_scale, self._gate_offset
        batch = gates.shape[1]
        product = np.empty((batch, 4 * h), self.np_dtype)
        input_gate = np.empty((batch, h), self.np_dtype)
        for t in range(first, end):
            z = gates[t]  # [B, 4H]
            z += np.matmul(outputs[t], recurrent, out=product)
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
        """A scratch array reused from step to step (no fresh pages to fault in each time)."""
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
    ) -> Gradients:
        """Loss and its exact gradient for one batch, by back-propagation through time over
        the num_steps of the batch; nothing flows into the incoming state (truncated BPTT),
        but its gradient is reported for checks. Parameters are not changed."""
        with self._split() as work:
            return self._gradients(inputs, targets, state, masks, work)

    def _gradients(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        state: State,
        masks: list[np.ndarray] | None,
        work: Work,
    ) -> Gradients:
        # Softmax and cross-entropy. The loss is summed over time and averaged over the
        # batch, so every row's gradient (p - onehot) is scaled by 1 / B.
        batch = inputs.shape[0]
        softmax = _SoftmaxRows(self, targets, 1.0 / batch, work)
        cache, final_state = self._forward(inputs, state, masks, work, softmax.put)
        work.drain()
        steps = cache.inputs.shape[0]
        # The softmax weight gradient does not feed back-propagation through time: its
        # column blocks go to the helpers first, while this thread goes back in time.
        blocks = range(0, self.vocab_size, _BLOCK_COLUMNS if work.helpers else self.vocab_size)
        grad = self._softmax_weight_grad(cache.top, softmax.logits, blocks, work)
        dense = {"softmax_kernel": grad[:-1], "softmax_bias": grad[-1]}
        assert softmax.dtop is not None  # a training step's softmax has a grad_scale
        dx = softmax.dtop.reshape(steps, batch, self.hidden_size)
        if masks is not None:
            dx *= masks[self.num_layers]
        state_grad, embedding_grad = self._lstm_gradients(cache, dx, masks, dense, work)
        work.drain()
        rows, row_grads = embedding_grad
        return Gradients(
            softmax.nll() / batch,
            dense,
            rows,
            row_grads,
            state_grad,
            final_state,
            self.vocab_size,
            tuple(self.params),
        )

    def _softmax_weight_grad(
        self, top: np.ndarray, dlogits: np.ndarray, blocks: range, work: Work
    ) -> np.ndarray:
        """Queues d loss / d [kernel; bias] = top.T @ dlogits [H + 1, V] on ``work``, a task
        for each column block starting at ``blocks``; complete once work is drained."""
        grad = np.empty((top.shape[1], self.vocab_size), self.np_dtype)
        for start in blocks:
            columns = slice(start, start + blocks.step)
            work.put(functools.partial(np.matmul, top.T, dlogits[:, columns], out=grad[:, columns]))
        return grad

    def _lstm_gradients(
        self,
        cache: _Cache,
        dx: np.ndarray,
        masks: list[np.ndarray] | None,
        dense: dict[str, np.ndarray],
        work: Work,
    ) -> tuple[State, list]:
        """Back-propagation through time from d loss / d top output ``dx`` [T, B, H], top
        layer first, on this thread; the weight gradients, which nothing here waits for, are
        queued on ``work`` (ahead of what is queued) into arrays put in ``dense`` now (so its
        order never varies).
        Returns d loss / d (h0, c0) of every layer and a list that holds the embedding
        gradient as [distinct ids, their rows] once work is drained."""
        steps, batch = cache.inputs.shape
        h = self.hidden_size
        state_grad: State = [None] * self.num_layers  # type: ignore[list-item]
        for layer in reversed(range(self.num_layers)):
            dgates, dh0, dc0 = self._backward_through_time(layer, cache, dx)
            state_grad[layer] = (dh0, dc0)
            flat_dgates = dgates.reshape(steps * batch, 4 * h)
            x = cache.layer_inputs[layer].reshape(steps * batch, h)
            h_prev = cache.outputs[layer][:-1].reshape(steps * batch, h)
            for name, rows in (
                ("kernel", x.T),
                ("recurrent_kernel", h_prev.T),
                ("bias", np.ones(steps * batch, self.np_dtype)),
            ):
                # The bias gradient is the column sums, as a product: BLAS does it several
                # times faster than a reduction along axis 0.
                out = dense[f"lstm_{layer}_{name}"] = np.empty(
                    self.params[f"lstm_{layer}_{name}"].shape, self.np_dtype
                )
                work.put(functools.partial(np.matmul, rows, flat_dgates, out=out), first=True)
            below = np.empty((steps * batch, h), self.np_dtype)
            mask = None if masks is None else masks[layer].reshape(steps * batch, h)
            input_grad = functools.partial(
                _input_grad, flat_dgates, self.params[f"lstm_{layer}_kernel"].T, mask, below
            )
            if layer > 0:  # the layer below needs it now
                input_grad()
                dx = below.reshape(steps, batch, h)
        # The embedding's gradient rows: nothing waits for them but the update.
        embedding_grad: list = []

        def embedding() -> None:
            input_grad()
            embedding_grad.extend(_sum_rows(cache.inputs.reshape(-1), below))

        work.put(embedding, first=True)
        return state_grad, embedding_grad

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
        factors[..., :h] *= gates[..., 2 * h : 3 * h]  # g * i'
        factors[..., h : 2 * h] *= cells[:-1]  # c(t-1) * f'
        factors[..., 2 * h : 3 * h] *= gates[..., :h]  # i * g'
        factors[..., 3 * h :] *= tanh_cells  # tanh(c) * o'
        dc_from_dh = 1.0 - tanh_cells * tanh_cells
        dc_from_dh *= gates[..., 3 * h :]  # o * (1 - tanh(c)^2)
        forget = gates[..., h : 2 * h]
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
            np.multiply(
                factors[t, :, : 3 * h].reshape(batch, 3, h),
                dc[:, None, :],
                out=d[:, : 3 * h].reshape(batch, 3, h),
            )
            np.multiply(dh, factors[t, :, 3 * h :], out=d[:, 3 * h :])
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

    def _adam(self, grads: Gradients, learning_rate: float, norm: float) -> None:
        """Clip by global norm, then Adam or AMSGrad (``ptb_lstm.optim``). Its update is
        dense: rows of the embedding the batch did not use still move by their momentum."""
        max_norm = self.config.max_grad_norm
        dense = {**grads.dense, "embedding": grads.dense_embedding(self.vocab_size)}
        self.adam.update(self.params, dense, learning_rate, max_norm / max(norm, max_norm))


class _SoftmaxRows:
    """The softmax and cross-entropy of the top layer's rows, queued on ``work`` block by
    block as the forward pass produces them. For rows first .. end - 1: logits = top @
    [kernel; bias] into the engine's logits buffer, the summed NLL of their targets, and with
    ``grad_scale`` the buffer becomes grad_scale * d NLL / d logits (kept for the weight
    gradient) and ``dtop`` [N, H] gets grad_scale * d NLL / d top."""

    def __init__(
        self, engine: NumpyEngine, targets: np.ndarray, grad_scale: float | None, work: Work
    ) -> None:
        self.engine, self.grad_scale, self.work = engine, grad_scale, work
        self.targets = np.ascontiguousarray(targets.T).reshape(-1)  # time-major, as the rows
        rows = self.targets.size
        self.logits = engine._buffer("logits", (rows, engine.vocab_size))
        self.dtop = None
        if grad_scale is not None:
            self.dtop = np.empty((rows, engine.hidden_size), engine.np_dtype)
        self._parts: list[tuple[int, float]] = []
        self._waiting = 0  # the first row not yet queued

    def put(self, top: np.ndarray, first: int, end: int) -> None:
        """Rows first .. end - 1 of ``top`` are ready: queue them once there are enough."""
        size = min(_SOFTMAX_ROWS, -(-len(self.targets) // (self.work.helpers + 1)))
        if end - self._waiting >= size or end == len(self.targets):
            # Ahead of the small tasks of the forward pass, which the thread running the
            # recurrence can do itself.
            self.work.put(functools.partial(self._rows, top, self._waiting, end), first=True)
            self._waiting = end

    def _rows(self, top: np.ndarray, first: int, end: int) -> None:
        part = slice(first, end)
        weights = self.engine._softmax_weights
        np.matmul(top[part], weights, out=self.logits[part])
        nll = _softmax_nll_in_place(
            self.logits[part], self.targets[part], self.grad_scale, top[part], weights
        )
        if self.dtop is not None:
            np.matmul(
                self.logits[part], self.engine.params["softmax_kernel"].T, out=self.dtop[part]
            )
        self._parts.append((first, nll))

    def nll(self) -> float:
        """The summed NLL of every row, added in row order (whichever thread ran them)."""
        return float(sum(nll for _, nll in sorted(self._parts)))


def _softmax_nll_in_place(
    logits: np.ndarray,
    targets: np.ndarray,
    grad_scale: float | None,
    top: np.ndarray,
    weights: np.ndarray,
) -> float:
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


# With helper threads, the sizes of the tasks: small enough to keep every thread busy and to
# start the softmax early, large enough for BLAS. The forward pass goes in blocks of time
# steps; the softmax (a product of [rows, H + 1] @ [H + 1, V] and one back) in blocks of
# _SOFTMAX_ROWS rows, or an equal share of the rows for each thread if that is smaller
# (smaller ones run BLAS far below its rate); its weight
# gradient in blocks of columns (~0.2 GFLOP each on the small config).
_BLOCK_STEPS = 5
# Helper threads only up to this hidden size: with batch 20 they were faster at 200 (the small
# config, also with batches of 10 to 80) and slower at 400 and 650
# (benchmarks/studies/threads_ab.py).
_THREADED_HIDDEN_MAX = 256
_SOFTMAX_ROWS = 200
_BLOCK_COLUMNS = 1250

# Below 1e-20 the terms under float32's smallest normal number (1.2e-38, at most V of them),
# which lose precision or vanish, could matter at float32 precision; above 1e30 the sum nears
# overflow.
_SUM_LOW, _SUM_HIGH = 1e-20, 1e30


# Squares are summed in blocks this long: a block's squares stay in cache while NumPy sums them.
_SQUARES_BLOCK = 1 << 16


def _sum_of_squares(arrays: list[np.ndarray]) -> float:
    """sum(a * a) over every entry of ``arrays``, as accurate in float32 as NumPy's pairwise
    summation: each block is summed pairwise and the blocks' sums are added in float64.
    (A float32 dot product, np.vdot(a, a), accumulates in float32 and was 1.6e-5 off on the
    medium config's gradients and 7.6e-5 on the large one's, a clipping scale off by as much.)"""
    total = 0.0
    for array in arrays:
        flat = array.reshape(-1)
        block = np.empty(min(flat.size, _SQUARES_BLOCK), flat.dtype)
        for start in range(0, flat.size, _SQUARES_BLOCK):
            part = flat[start : start + _SQUARES_BLOCK]
            squares = block[: part.size]
            np.multiply(part, part, out=squares)
            total += float(squares.sum())
    return total


def _input_grad(
    dgates: np.ndarray, kernel_t: np.ndarray, mask: np.ndarray | None, out: np.ndarray
) -> None:
    """d loss / d layer input [N, H] = dgates [N, 4H] @ kernel.T, times the dropout mask."""
    np.matmul(dgates, kernel_t, out=out)
    if mask is not None:
        out *= mask


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
