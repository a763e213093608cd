"""TensorFlow graph engine: a ``tf.compat.v1`` dataflow graph built once, run in a Session.

The graph holds variables for the weights, for the carried LSTM state and for the learning
rate; inputs arrive through placeholders; one training op does the forward pass, the gradients,
global-norm clipping, SGD and the state update. Eager execution stays on for the rest of the
process (the graph is built inside ``graph.as_default()``), so both TensorFlow engines can run
side by side. The maths is in ``_tf_model``, shared with the eager engine.

A graph is unrolled for a fixed (batch_size, num_steps); the training shape is built at once,
and each other evaluation shape (say 1 x 1) gets its own ops the first time it is asked for,
sharing the same weight variables, as the TensorFlow tutorial's train/valid/test models do.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ptb_lstm.engines import Engine
from ptb_lstm.engines._tf_model import clipped_adam, clipped_sgd, forward, pick_device, summed_nll
from ptb_lstm.optim import bias_corrections, state_shapes
from ptb_lstm.params import param_shapes

v1 = tf.compat.v1


class _StateVariables:
    """The carried state of one batch size: variables, and ops to zero or load them."""

    def __init__(self, batch_size: int, hidden_size: int, num_layers: int, dtype) -> None:
        zeros = tf.zeros([batch_size, hidden_size], dtype)
        self.variables = [
            (
                tf.Variable(zeros, trainable=False, name=f"h_{layer}"),
                tf.Variable(zeros, trainable=False, name=f"c_{layer}"),
            )
            for layer in range(num_layers)
        ]
        self.reset = tf.group(*[v.assign(zeros) for pair in self.variables for v in pair])
        self.feeds = [
            (
                v1.placeholder(dtype, [batch_size, hidden_size]),
                v1.placeholder(dtype, [batch_size, hidden_size]),
            )
            for _ in range(num_layers)
        ]
        self.load = tf.group(
            *[
                var.assign(feed)
                for pair, feeds in zip(self.variables, self.feeds, strict=True)
                for var, feed in zip(pair, feeds, strict=True)
            ]
        )


class _Unrolled:
    """The ops of one (batch_size, num_steps) shape, training or evaluation."""

    def __init__(self, engine: TFGraphEngine, state_vars: list, num_steps: int, train: bool):
        config, dtype = engine.config, engine.tf_dtype
        batch_size = state_vars[0][0].shape[0]
        self.inputs = v1.placeholder(tf.int32, [batch_size, num_steps], "inputs")
        self.targets = v1.placeholder(tf.int32, [batch_size, num_steps], "targets")
        state = [(h.read_value(), c.read_value()) for h, c in state_vars]
        # Dropout masks are fed like the inputs (ptb_lstm.dropout draws them), into the
        # training ops of a config with dropout only.
        self.masks = (
            [
                v1.placeholder(dtype, [num_steps, batch_size, config.hidden_size], f"mask_{index}")
                for index in range(config.num_layers + 1)
            ]
            if train and config.dropout > 0
            else None
        )
        logits, final = forward(engine.variables, self.inputs, state, config, self.masks)
        self.logits = logits
        nll = summed_nll(logits, self.targets)
        updates = []
        if train:
            self.output = nll / tf.cast(batch_size, dtype)  # the loss
            variables = [engine.variables[n] for n in engine.names]
            gradients = v1.gradients(self.output, variables)
            if config.optimizer == "sgd":
                updates, self.norm = clipped_sgd(
                    variables, gradients, engine.learning_rate, config.max_grad_norm
                )
            else:
                updates, self.norm = clipped_adam(
                    engine.variables,
                    gradients,
                    engine.slots,
                    engine.learning_rate,
                    engine.corrections,
                    config,
                )
        else:
            self.output = nll
        # Storing the new state waits for the loss and the SGD updates, so that fetching it
        # runs the updates, which nothing else fetched reads.
        self.step = _store_state(state_vars, final, [self.output, *updates])
        # Sampling and scoring fetch the logits alone, with no targets to feed.
        self.logits_step = _store_state(state_vars, final, [logits])


def _store_state(state_vars: list, final: list, after: list):
    """One op assigning the final state to the state variables once ``after`` has run."""
    with tf.control_dependencies(after):
        return tf.group(
            *[
                var.assign(value)
                for pair_vars, pair in zip(state_vars, final, strict=True)
                for var, value in zip(pair_vars, pair, strict=True)
            ]
        )


class TFGraphEngine(Engine):
    name = "tf-graph"
    devices = ("cpu", "cuda")

    def __init__(self, config, params, dtype="float32", device="auto"):
        super().__init__(config, params, dtype, device)
        self.tf_dtype = tf.as_dtype(dtype)
        self._device = pick_device(device)
        shapes = param_shapes(config, self.vocab_size)
        self.names = list(shapes)
        self.graph = tf.Graph()
        self._states: dict[int, _StateVariables] = {}  # by batch size
        self._ops: dict[tuple[int, int, bool], _Unrolled] = {}
        with self.graph.as_default(), tf.device(self._device):
            # Weights start as zeros and are filled from feeds, so that the graph does not
            # carry every parameter as a constant.
            self.variables = {
                n: tf.Variable(tf.zeros(shapes[n], self.tf_dtype), name=n) for n in self.names
            }
            self._feeds = {n: v1.placeholder(self.tf_dtype, shapes[n]) for n in self.names}
            self._assign = tf.group(*[self.variables[n].assign(self._feeds[n]) for n in self.names])
            self.learning_rate = tf.Variable(
                1.0, trainable=False, dtype=self.tf_dtype, name="learning_rate"
            )
            self._lr_feed = v1.placeholder(self.tf_dtype, [])
            self._set_lr = self.learning_rate.assign(self._lr_feed)
            # Adam's and AMSGrad's moments live in the graph; the update count t is kept here
            # in Python and each step feeds its bias corrections, the very floats the NumPy
            # engines compute.
            slot_shapes = {
                n: shape for n, shape in state_shapes(config, self.vocab_size).items() if n != "t"
            }
            self.slots = {
                n: tf.Variable(tf.zeros(shape, self.tf_dtype), trainable=False, name=n)
                for n, shape in slot_shapes.items()
            }
            self._slot_feeds = {
                n: v1.placeholder(self.tf_dtype, shape) for n, shape in slot_shapes.items()
            }
            self._assign_slots = tf.group(
                *[self.slots[n].assign(self._slot_feeds[n]) for n in self.slots]
            )
            self.corrections = (
                v1.placeholder(self.tf_dtype, [], "correction1"),
                v1.placeholder(self.tf_dtype, [], "correction2"),
            )
        self.t = 0
        self.session = v1.Session(graph=self.graph)
        with self.graph.as_default():
            self.session.run(v1.global_variables_initializer())
        self.set_params(params)
        self._lr_value: float | None = None
        self._batch_size: int | None = None
        self._unrolled(config.batch_size, config.num_steps, train=True)  # build it now
        self.reset_state(config.batch_size)

    @property
    def device(self) -> str:
        return self._device

    def _state(self, batch_size: int) -> _StateVariables:
        """The carried-state variables of this batch size, created (zeroed) when first needed."""
        if batch_size not in self._states:
            with (
                self.graph.as_default(),
                tf.device(self._device),
                v1.name_scope(f"state_{batch_size}"),
            ):
                self._states[batch_size] = _StateVariables(
                    batch_size, self.config.hidden_size, self.config.num_layers, self.tf_dtype
                )
            self.session.run(self._states[batch_size].reset)
        return self._states[batch_size]

    def _unrolled(self, batch_size: int, num_steps: int, train: bool) -> _Unrolled:
        """The ops for this shape, added to the graph the first time they are needed."""
        key = (batch_size, num_steps, train)
        if key not in self._ops:
            state = self._state(batch_size)
            scope = f"{'train' if train else 'eval'}_{batch_size}x{num_steps}"
            with self.graph.as_default(), tf.device(self._device), v1.name_scope(scope):
                self._ops[key] = _Unrolled(self, state.variables, num_steps, train)
        return self._ops[key]

    def get_params(self):
        values = self.session.run(self.variables)
        return {n: np.array(values[n]) for n in self.names}

    def set_params(self, params):
        self.session.run(
            self._assign, {self._feeds[n]: np.asarray(params[n], self.dtype) for n in self.names}
        )

    def get_optimizer_state(self):
        if self.config.optimizer == "sgd":
            return {}
        values = self.session.run(self.slots)
        return {"t": np.array(self.t, np.int64), **{n: np.array(values[n]) for n in self.slots}}

    def set_optimizer_state(self, state):
        if self.config.optimizer == "sgd":
            return
        self.t = int(state["t"])
        self.session.run(
            self._assign_slots,
            {self._slot_feeds[n]: np.asarray(state[n], self.dtype) for n in self.slots},
        )

    # The carried state lives in graph variables, one set per batch size, because the step op
    # that reads it also stores the new one; ``state`` (which Engine's methods use) reads the
    # variables of the current batch size and loads values into them.

    @property
    def state(self):
        return self._states[self._batch_size].variables

    @state.setter
    def state(self, state):
        batch_size = int(np.shape(state[0][0])[0])
        states = self._state(batch_size)
        feed = {}
        for (h_feed, c_feed), (h, c) in zip(states.feeds, state, strict=True):
            feed[h_feed], feed[c_feed] = h, c
        self.session.run(states.load, feed)
        self._batch_size = batch_size

    def _to_numpy(self, value):
        return np.array(self.session.run(value))

    def _from_numpy(self, array):
        return np.asarray(array, self.dtype)

    def logits(self, inputs):
        ops = self._prepare(inputs, train=False)
        logits, _ = self.session.run([ops.logits, ops.logits_step], {ops.inputs: inputs})
        batch, steps = inputs.shape
        return logits.reshape(steps, batch, -1).transpose(1, 0, 2)

    def _prepare(self, inputs: np.ndarray, train: bool) -> _Unrolled:
        batch_size, num_steps = inputs.shape
        ops = self._unrolled(batch_size, num_steps, train=train)
        self._state_for(inputs.shape[0])
        return ops

    def train_step(self, inputs, targets, learning_rate, masks=None):
        ops = self._prepare(inputs, train=True)
        if learning_rate != self._lr_value:
            self.session.run(self._set_lr, {self._lr_feed: learning_rate})
            self._lr_value = learning_rate
        feed = {ops.inputs: inputs, ops.targets: targets}
        if self.config.optimizer != "sgd":
            feed.update(
                zip(self.corrections, bias_corrections(self.config, self.t + 1), strict=True)
            )
        if ops.masks is not None:
            if masks is None:  # no dropout asked for this step: masks that keep every unit
                masks = [np.ones(m.shape, self.dtype) for m in ops.masks]
            feed.update(zip(ops.masks, masks, strict=True))
        elif masks is not None:
            # A caller's mistake, not a user's: every caller draws the masks with
            # dropout.step_masks from the engine's own config, which gives None without dropout.
            raise AssertionError(
                "tf-graph train_step: dropout masks given, but the engine's config has "
                "dropout 0, so its graph has no mask inputs; pass masks=None"
            )
        loss, norm, _ = self.session.run([ops.output, ops.norm, ops.step], feed)
        if self.config.optimizer != "sgd":
            self.t += 1
        self.last_grad_norm = float(norm)
        return float(loss)

    def eval_step(self, inputs, targets):
        ops = self._prepare(inputs, train=False)
        nll, _ = self.session.run(
            [ops.output, ops.step], {ops.inputs: inputs, ops.targets: targets}
        )
        return float(nll)
