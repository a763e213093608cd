"""TensorFlow eager engine: variables, ``tf.GradientTape``, every op run as Python reaches it.

No ``tf.function`` wraps the step: an eager engine that secretly compiles would not be eager.
The maths is in ``_tf_model`` (shared with the graph engine), written from TensorFlow ops.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ptb_lstm.engines import Engine
from ptb_lstm.engines._tf_model import clipped_adam, clipped_sgd, forward, pick_device, summed_nll
from ptb_lstm.optim import bias_corrections, initial_state
from ptb_lstm.params import param_shapes


class TFEagerEngine(Engine):
    name = "tf-eager"
    devices = ("cpu", "cuda")

    def __init__(self, config, params, dtype="float32", device="auto"):
        super().__init__(config, params, dtype, device)
        self.tf_dtype = tf.as_dtype(dtype)
        self._device = pick_device(device)
        self.names = list(param_shapes(config, self.vocab_size))
        with tf.device(self._device):
            self.variables = {
                name: tf.Variable(np.asarray(params[name], dtype), name=name) for name in self.names
            }
            # Adam's and AMSGrad's moments; the update count t is a Python int, so that the
            # bias corrections are the very floats the NumPy engines compute.
            self.slots = {
                name: tf.Variable(value, trainable=False, name=name)
                for name, value in initial_state(config, self.vocab_size, dtype).items()
                if name != "t"
            }
        self.t = 0
        self.reset_state(config.batch_size)

    @property
    def device(self) -> str:
        return self._device

    def get_params(self):
        return {name: v.numpy().copy() for name, v in self.variables.items()}

    def set_params(self, params):
        for name, variable in self.variables.items():
            variable.assign(np.asarray(params[name], self.dtype))

    def get_optimizer_state(self):
        if self.config.optimizer == "sgd":
            return {}
        return {
            "t": np.array(self.t, np.int64),
            **{name: v.numpy().copy() for name, v in self.slots.items()},
        }

    def set_optimizer_state(self, state):
        if self.config.optimizer == "sgd":
            return
        self.t = int(state["t"])
        for name, variable in self.slots.items():
            variable.assign(np.asarray(state[name], self.dtype))

    def _to_numpy(self, value):
        return value.numpy().copy()

    def _from_numpy(self, array):
        return tf.constant(np.asarray(array, self.dtype))

    def train_step(self, inputs, targets, learning_rate, masks=None):
        state = self._state_for(inputs.shape[0])
        with tf.device(self._device):
            inputs, targets = tf.constant(inputs), tf.constant(targets)
            if masks is not None:
                masks = [tf.constant(np.asarray(m, self.dtype)) for m in masks]
            variables = [self.variables[n] for n in self.names]
            with tf.GradientTape() as tape:
                logits, final_state = forward(self.variables, inputs, state, self.config, masks)
                loss = summed_nll(logits, targets) / tf.cast(inputs.shape[0], self.tf_dtype)
            gradients = tape.gradient(loss, variables)
            if self.config.optimizer == "sgd":
                _, norm = clipped_sgd(
                    variables, gradients, learning_rate, self.config.max_grad_norm
                )
            else:
                self.t += 1
                _, norm = clipped_adam(
                    self.variables,
                    gradients,
                    self.slots,
                    learning_rate,
                    bias_corrections(self.config, self.t),
                    self.config,
                )
        self.state = final_state
        self.last_grad_norm = float(norm)
        return float(loss)

    def eval_step(self, inputs, targets):
        state = self._state_for(inputs.shape[0])
        with tf.device(self._device):
            logits, self.state = forward(self.variables, tf.constant(inputs), state, self.config)
            return float(summed_nll(logits, tf.constant(targets)))

    def logits(self, inputs):
        state = self._state_for(inputs.shape[0])
        with tf.device(self._device):
            logits, self.state = forward(self.variables, tf.constant(inputs), state, self.config)
        batch, steps = inputs.shape
        return logits.numpy().reshape(steps, batch, -1).transpose(1, 0, 2)
