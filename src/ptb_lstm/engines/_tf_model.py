"""The model in TensorFlow ops, shared by the eager and the graph engine.

The same functions build the computation in both: run eagerly they compute at once, called
inside a ``tf.Graph`` they add ops to it. The LSTM cell is written from TensorFlow ops on the
canonical parameters (docs/model.md §2, §3), not taken from Keras, so that its state handling and
parameter layout are exactly those of the NumPy engine.

Shapes: T = num_steps, B = batch size, H = hidden size, V = vocabulary size.
"""

from __future__ import annotations

import tensorflow as tf

from ptb_lstm.config import Config
from ptb_lstm.engines import quiet_native_stderr
from ptb_lstm.errors import UserError


def pick_device(device: str = "auto") -> str:
    """TensorFlow's name of the device asked for: "cpu"; "cuda", the first GPU TensorFlow
    sees; "auto", that GPU when there is one, else the CPU. On a GPU, TensorFloat-32 is
    switched off (process-wide): it rounds the inputs of float32 products to 10 mantissa bits,
    and the engine would no longer compute what the other engines compute."""
    if device == "cpu":
        return "/CPU:0"
    with quiet_native_stderr():
        gpus = tf.config.list_logical_devices("GPU")
    if device == "cuda" and not gpus:
        raise UserError(
            "--device cuda: TensorFlow sees no GPU (it needs an NVIDIA GPU and "
            "pip install 'tensorflow[and-cuda]'); use --device cpu or auto"
        )
    if not gpus:
        return "/CPU:0"
    tf.config.experimental.enable_tensor_float_32_execution(False)
    return gpus[0].name


def forward(params: dict, inputs, state: list, config: Config, masks=None):
    """Logits [T*B, V] for inputs [B, T] (ids) from ``state`` (per layer (h, c), [B, H]),
    and the final state. ``masks`` (L + 1 tensors [T, B, H], ``ptb_lstm.dropout``) multiply
    the non-recurrent connections only: the embedding output, each layer's output going into
    the next and the top output going into the softmax; None: no dropout."""
    hidden = config.hidden_size
    ids = tf.transpose(inputs)  # [T, B]
    steps = ids.shape[0]
    x = tf.nn.embedding_lookup(params["embedding"], ids)  # [T, B, H]
    final_state = []
    for layer in range(config.num_layers):
        if masks is not None:
            x = x * masks[layer]
        kernel = params[f"lstm_{layer}_kernel"]
        recurrent = params[f"lstm_{layer}_recurrent_kernel"]
        bias = params[f"lstm_{layer}_bias"]
        # The input projection of every time step in one product: [T*B, H] @ [H, 4H].
        projected = tf.reshape(
            tf.matmul(tf.reshape(x, [-1, hidden]), kernel) + bias, [steps, -1, 4 * hidden]
        )  # [T, B, 4H]
        h, c = state[layer]
        outputs = []
        for t in range(steps):
            z = projected[t] + tf.matmul(h, recurrent)  # [B, 4H]
            z_i, z_f, z_g, z_o = tf.split(z, 4, axis=1)
            c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_g)
            h = tf.sigmoid(z_o) * tf.tanh(c)
            outputs.append(h)
        final_state.append((h, c))
        x = tf.stack(outputs)  # [T, B, H]
    if masks is not None:
        x = x * masks[config.num_layers]
    logits = tf.matmul(tf.reshape(x, [-1, hidden]), params["softmax_kernel"])
    return logits + params["softmax_bias"], final_state


def summed_nll(logits, targets):
    """Summed NLL of targets [B, T] under logits [T*B, V] (time-major rows)."""
    labels = tf.reshape(tf.transpose(targets), [-1])
    return tf.reduce_sum(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )


def sum_duplicate_rows(gradient):
    """An embedding gradient as IndexedSlices with each row once (duplicates summed), so that
    its norm is the norm of the true gradient, as in the NumPy engine."""
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    rows, position = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, gradient.dense_shape)


def _scalar(value, dtype):
    """A Python number or a tensor as a scalar of ``dtype``. A Python float goes straight to
    ``dtype``: ``tf.cast`` would make it a float32 tensor first and round it there (0.01 is
    then off by 2e-10 in a float64 engine)."""
    if isinstance(value, (int, float)):
        return tf.constant(value, dtype)
    return tf.cast(value, dtype)


def clipped_sgd(variables: list, gradients: list, learning_rate, max_grad_norm: float):
    """Global-norm clipping (as tf.clip_by_global_norm) and plain SGD; sparse rows get a
    scatter update. Returns the updates and the global norm before clipping: run eagerly, the
    updates have already changed the variables; traced into a graph, they are its update ops."""
    gradients = [sum_duplicate_rows(g) for g in gradients]
    norm = tf.linalg.global_norm(gradients)
    max_norm = tf.constant(max_grad_norm, norm.dtype)
    step = _scalar(learning_rate, norm.dtype) * max_norm / tf.maximum(norm, max_norm)
    updates = []
    for variable, gradient in zip(variables, gradients, strict=True):
        if isinstance(gradient, tf.IndexedSlices):
            updates.append(
                variable.scatter_sub(tf.IndexedSlices(step * gradient.values, gradient.indices))
            )
        else:
            updates.append(variable.assign_sub(step * gradient))
    return updates, norm


def clipped_adam(
    variables: dict, gradients: list, slots: dict, learning_rate, corrections, config: Config
):
    """Global-norm clipping, then Adam or AMSGrad as ``ptb_lstm.optim`` writes them (not
    Keras' Adam, which adds epsilon to the square root of the uncorrected v), in the same order
    of operations. ``variables``: canonical name -> variable; ``slots``: the optimizer's
    variables under the names of ``optim.state_shapes`` but ``t``; ``corrections``:
    (1 - beta1^t, 1 - beta2^t) of this update. The embedding's sparse gradient is made dense
    first: Adam moves every row by its momentum. Returns the update ops and the norm."""
    gradients = [sum_duplicate_rows(g) for g in gradients]
    norm = tf.linalg.global_norm(gradients)
    dtype = norm.dtype
    max_norm = tf.constant(config.max_grad_norm, dtype)
    scale = max_norm / tf.maximum(norm, max_norm)
    beta1, beta2 = tf.constant(config.beta1, dtype), tf.constant(config.beta2, dtype)
    one_minus_beta1 = tf.constant(1.0 - config.beta1, dtype)
    one_minus_beta2 = tf.constant(1.0 - config.beta2, dtype)
    epsilon = tf.constant(config.epsilon, dtype)
    correction1, correction2 = (_scalar(c, dtype) for c in corrections)
    learning_rate = _scalar(learning_rate, dtype)
    updates = []
    for (name, variable), gradient in zip(variables.items(), gradients, strict=True):
        if isinstance(gradient, tf.IndexedSlices):  # rows distinct: an exact scatter
            gradient = tf.math.unsorted_segment_sum(
                gradient.values, gradient.indices, variable.shape[0]
            )
        g = gradient * scale
        m = beta1 * slots[f"m_{name}"] + one_minus_beta1 * g
        v = beta2 * slots[f"v_{name}"] + one_minus_beta2 * (g * g)
        updates += [slots[f"m_{name}"].assign(m), slots[f"v_{name}"].assign(v)]
        if config.optimizer == "amsgrad":
            v = tf.maximum(slots[f"vmax_{name}"], v)
            updates.append(slots[f"vmax_{name}"].assign(v))
        denominator = tf.sqrt(v / correction2) + epsilon
        updates.append(variable.assign_sub(learning_rate * (m / correction1) / denominator))
    return updates, norm
