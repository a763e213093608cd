# %% [markdown]
# # Part II — the same model with TensorFlow eager execution
#
# Part I wrote every derivative by hand. Here TensorFlow computes them: in **eager execution**
# each TensorFlow operation runs as soon as Python reaches it and returns a value, as NumPy does,
# and a `tf.GradientTape` records the operations run inside it so that it can play them backwards
# — back-propagation done by the library, for any computation. The toolkit's `tf-eager` engine
# (`ptb_lstm/engines/tf_eager.py`) holds the same parameters as the NumPy engines, under the same
# names and layout (Part I (b)), and computes the same function.
#
# By the end you can write the TensorFlow training step yourself: the forward pass from
# TensorFlow operations, the loss, the gradients from a tape, clipping by the global norm and the
# SGD update of the variables; the exercises at the end check yours against Part I's reference
# engine. What Part I established is taken as known: the data and its [B, T] batches, the
# equations, the loss summed over time and averaged over the batch, the carried state and
# truncated BPTT, clipping and SGD.
#
# Contents: (a) tensors and variables, and their dtypes · (b) `GradientTape` · (c) `tf.function`
# and when it retraces · (d) the model in TensorFlow operations, time-major · (e) the
# embedding's gradient, `IndexedSlices` · (f) clipping and the SGD update · (g) the whole step,
# against Part I's · (h) the engine, attribute by attribute · (i) a short run and the full
# results · (j) exercises.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log, if it loads
import inspect
import json
import pathlib
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ptb_lstm.config import PRESETS
from ptb_lstm.data import load_corpus, locate_data_dir

STEPS = int(os.environ.get("PTB_LSTM_NOTEBOOK_STEPS", "100"))  # steps of the short runs
REPO = pathlib.Path(os.environ.get("PTB_LSTM_REPO", ".."))  # the repository (docs/results)
corpus = load_corpus(locate_data_dir())  # $PTB_DATA_DIR, or the user cache (downloading once)
print(
    f"PTB: {len(corpus.train):,} training tokens, vocabulary {corpus.vocab_size:,}; "
    f"short runs of {STEPS} steps"
)


def show_source(obj):
    """Show the toolkit's own code (imported, not copied)."""
    display(Markdown("```python\n" + inspect.getsource(obj) + "\n```"))


# %%
from ptb_lstm.engines import quiet_native_stderr

with quiet_native_stderr():  # TensorFlow probes for GPUs as it loads; that chatter is held back
    import tensorflow as tf
print("TensorFlow", tf.__version__)

# %% [markdown]
# ## (a) Tensors and variables, and their dtypes
#
# TensorFlow has two kinds of arrays.
#
# * A **tensor** (`tf.Tensor`, made by `tf.constant(...)` or by any operation) is an immutable
#   value: an operation on tensors returns a new tensor and never changes its inputs.
#   `tensor.numpy()` gives it back as a NumPy array.
# * A **variable** (`tf.Variable(initial_value)`) holds a tensor that can be replaced in place:
#   `v.assign(x)`, `v.assign_add(x)`, `v.assign_sub(x)` (that is $v \leftarrow v - x$, the SGD
#   update), and `v.scatter_sub(tf.IndexedSlices(values, indices))`, which subtracts
#   `values[k]` from row `indices[k]` of `v`, for every k, and leaves the other rows alone
#   (section (e)). In an operation a variable is read as the tensor it holds.
#   The model's parameters are variables, because each step changes them; everything else (the
#   batch, the carried state, the activations) is tensors.
#
# **Copies.** `tf.Variable(np_array)` copies the array: changing the array afterwards leaves the
# variable alone, and `assign_sub` leaves the array alone. `v.numpy()` (and `tensor.numpy()`)
# returns a new array, a copy ("Copy of the contents of this Tensor", in TensorFlow's
# documentation of `numpy()`): writing into it changes neither the variable nor a later
# `v.numpy()`. (`np.asarray(tensor)`, by contrast, is a view of the tensor's own memory, which
# a tensor never changes.) The cell below checks all four.
#
# **Dtypes.** `tf.constant(np_array)` and `tf.Variable(np_array)` keep the array's dtype, and a
# Python float becomes **float32** (`tf.constant(0.1)`). Where TensorFlow converts a float dtype
# and where it refuses follows one rule, by what is converted:
#
# * a **Python number or NumPy array** is converted to the dtype it is asked to become, without a
#   word, float64 to float32 included (rounded to float32's 24 bits, a too-small number to 0):
#   `tf.constant(value, dtype)`, `tf.Variable(value, dtype=dtype)`; and in an operation with a
#   tensor it becomes that tensor's dtype: `2.0 * x`, `x / 20`, and even a float64 NumPy array
#   times a float32 tensor gives a float32 tensor;
# * a **tensor** is never converted but by `tf.cast(tensor, dtype)`: two tensors of different
#   dtypes in one operation are refused (a float64 tensor times a float32 tensor:
#   `InvalidArgumentError`), and so is a tensor given to `tf.constant` with another dtype
#   (`TypeError`).
#
# So in a float64 model every constant made as a tensor is given its dtype explicitly,
# `tf.constant(5.0, tf.float64)`, for a bare `tf.constant(5.0)` is a float32 tensor that the
# model's tensors refuse. And `tf.cast(0.01, tf.float64)` is not the same thing as
# `tf.constant(0.01, tf.float64)`: `tf.cast` makes its argument a tensor first, a float32 0.01,
# and widens that, rounded to float32's 24 bits:

# %%
weights = tf.Variable(np.array([1.0, 2.0, 3.0]))  # float64, from the NumPy array
print("a variable:", weights.dtype.name, weights.numpy())
weights.assign_sub(tf.constant([0.5, 0.5, 0.5], tf.float64))  # in place: weights <- weights - x
print("after assign_sub:", weights.numpy())
doubled = 2.0 * weights  # a new tensor; the 2.0 takes the variable's dtype
print("2.0 * weights is a", type(doubled).__name__, doubled.dtype.name, doubled.numpy())
print("tf.constant(0.1) is", tf.constant(0.1).dtype.name)
try:
    weights * tf.constant(0.1)
except tf.errors.InvalidArgumentError as error:
    print("float64 * float32:", type(error).__name__, "-", error.message.split(" [")[0])
print(
    "0.01 as tf.constant(0.01, tf.float64) - 0.01:",
    float(tf.constant(0.01, tf.float64)) - 0.01,
    "; as tf.cast(0.01, tf.float64) - 0.01:",
    f"{float(tf.cast(0.01, tf.float64)) - 0.01:.1e}",
)
narrowed = tf.constant(np.array([0.1, 1 / 3, 1e-50]), tf.float32)  # a float64 NumPy array
print("tf.constant(float64 array, tf.float32):", narrowed.dtype.name, narrowed.numpy())
print("float32 tensor * float64 NumPy array:", (narrowed * np.array([1.0, 1.0, 1.0])).dtype.name)
try:
    tf.constant(weights.read_value(), tf.float32)  # a float64 tensor
except TypeError as error:
    print("tf.constant(float64 tensor, tf.float32):", type(error).__name__)
print("tf.cast(float64 tensor, tf.float32):", tf.cast(weights, tf.float32).dtype.name)

array = np.array([1.0, 2.0, 3.0])
copied = tf.Variable(array)
array[0] = 99.0  # the variable holds its own copy
copied.assign_sub([1.0, 1.0, 1.0])  # and the array is not changed by the variable's update
print("array", array, "| variable", copied.numpy())
read = copied.numpy()
read[0] = 42.0  # a copy: the variable is not changed
print(
    "after writing into v.numpy():", copied.numpy(), "| shares memory with a second read:", end=" "
)
print(np.shares_memory(copied.numpy(), copied.numpy()))
assert array[0] == 99.0 and copied.numpy()[0] == 0.0
constant = tf.constant([1.0, 2.0])
print("two np.asarray(tensor) of one tensor share memory (views of the tensor's):", end=" ")
print(np.shares_memory(np.asarray(constant), np.asarray(constant)))

# %% [markdown]
# ## (b) `GradientTape`: what it records
#
# Inside `with tf.GradientTape() as tape:` TensorFlow records every operation applied to a
# *watched* value: trainable variables (every `tf.Variable` is trainable unless made with
# `trainable=False`) are watched by themselves, a tensor only after
# `tape.watch(tensor)`. `tape.gradient(target, sources)` then goes through the record backwards —
# the chain rule of Part I (e), applied by the library — and returns
# $\partial\,\text{target}/\partial\,\text{source}$ for each source, in the shape of the source.
# The target is a loss, a scalar. Given a target of several entries, `tape.gradient` returns the
# gradient of their **sum** (it starts the backward pass from ones of the target's shape), the
# same as for `tf.reduce_sum(target)`; the cell after next checks it. Three rules matter for a
# training step:
#
# * **A summed loss.** The gradient of a sum is the sum of the gradients, so the gradient of the
#   loss summed over time and averaged over the batch is the one Part I's BPTT computes; the
#   tape needs no loop of its own.
# * **One use.** A tape is released by its first `gradient` call; a second call raises
#   `RuntimeError`. `tf.GradientTape(persistent=True)` keeps the record for several calls (and
#   its memory until the tape is deleted). A training step needs one call, with the list of all
#   the variables as sources.
# * **What it does not see.** A value computed before the tape started, or from tensors it does
#   not watch, is a constant to it; a source the target does not depend on gets `None`.
#
# $y = \sigma(w x)$ at $w = 0.7$, $x = 2$. By hand (Part I, (e) step 7 and the chain rule):
# $\partial y/\partial w = \sigma(wx)\,(1 - \sigma(wx))\,x$.

# %%
w, x = tf.Variable(0.7, dtype=tf.float64), tf.constant(2.0, tf.float64)
with tf.GradientTape() as tape:  # records the operations on watched values
    y = tf.sigmoid(w * x)  # runs now: y is a value
by_tape = tape.gradient(y, w)  # the record played backwards
by_hand = tf.sigmoid(w * x) * (1 - tf.sigmoid(w * x)) * x
print(f"y = {float(y):.6f}; dy/dw by the tape {float(by_tape):.12f}, by hand {float(by_hand):.12f}")
assert abs(float(by_tape) - float(by_hand)) < 1e-15
try:
    tape.gradient(y, w)
except RuntimeError as error:
    print("a second gradient call:", error)

# %% [markdown]
# The three rules on a loss summed over a small batch of x values: the gradient of the sum
# against the sum of each term's gradient (a persistent tape, asked five times), a constant
# against a watched tensor, and a variable the loss does not use; and the gradient of the
# three-entry target `terms` itself, which is that of their sum:

# %%
xs = tf.constant([2.0, -1.0, 0.5], tf.float64)
unused = tf.Variable(1.0, dtype=tf.float64)
with tf.GradientTape(persistent=True) as tape:
    tape.watch(xs)  # a tensor: watched only when asked
    terms = tf.sigmoid(w * xs)  # [3]
    total = tf.reduce_sum(terms)
    parts = [terms[k] for k in range(3)]  # taking an entry is an operation: inside the tape
d_total, d_unused = tape.gradient(total, [w, unused])
one_by_one = sum(float(tape.gradient(part, w)) for part in parts)
print(f"d(sum)/dw = {float(d_total):.15f}; sum of the three d(term)/dw = {one_by_one:.15f}")
of_terms = float(tape.gradient(terms, w))  # a target of three entries
print(f"tape.gradient(terms, w), terms of shape [3]: {of_terms:.15f}, that of their sum")
assert of_terms == float(d_total)
print("d(sum)/d(unused variable):", d_unused)
print("d(sum)/d(xs), a watched tensor:", tape.gradient(total, xs).numpy())
del tape  # a persistent tape holds its record until it goes
assert abs(float(d_total) - one_by_one) < 1e-15

# %% [markdown]
# ## (c) `tf.function`, and when it retraces
#
# Eager execution pays Python's and TensorFlow's dispatch for every operation, and a training
# step has hundreds of small ones. `tf.function` removes that: the decorated Python function is
# run once, symbolically (a **trace**), to record the operations it performs, and later calls
# with arguments of the same kind run that record without Python. What counts as "the same kind"
# decides when it **retraces** (runs the Python function again and records anew):
#
# * a **tensor** argument is keyed by its dtype and shape: new values of the same shape reuse the
#   trace, a new shape or a new dtype traces again;
# * a **Python value** (a float, an int, a string) is keyed by its value: every new learning rate
#   passed as a Python float is a new trace, so a number that changes belongs in a tensor (or a
#   variable);
# * a Python value, a tensor and a variable are **different kinds** of argument, keyed apart: the
#   first call with a tensor in a place where Python floats came before traces, whatever its
#   value (its trace is then reused by tensors of that dtype and shape);
# * a variable used inside is read at every call: assigning it a new value retraces nothing;
# * `input_signature=[tf.TensorSpec([None], tf.float64)]` fixes the kind in advance: one trace
#   for any length (`None` is "any size"); arguments of another dtype are refused.
#
# Python code inside runs only while tracing, so a counter incremented in the body counts the
# traces. (`f.experimental_get_tracing_count()` says the same.)

# %%
traces = []


@tf.function
def scaled(x, factor):
    traces.append(1)  # Python: runs while tracing only
    return x * factor


calls = [
    ("a [3] tensor, factor 2.0", tf.constant([1.0, 2.0, 3.0]), 2.0),
    ("another [3] tensor, same factor", tf.constant([4.0, 5.0, 6.0]), 2.0),
    ("the same tensor, factor 3.0 (a new Python value)", tf.constant([4.0, 5.0, 6.0]), 3.0),
    ("a [2] tensor (a new shape)", tf.constant([1.0, 2.0]), 3.0),
    ("a [2] tensor again", tf.constant([7.0, 8.0]), 3.0),
    ("factor as a tensor 4.0 (a new kind of argument)", tf.constant([7.0, 8.0]), tf.constant(4.0)),
    ("factor as a tensor 5.0 (same dtype and shape)", tf.constant([7.0, 8.0]), tf.constant(5.0)),
]
for label, x, factor in calls:
    before = len(traces)
    scaled(x, factor)
    print(f"{label:<52} {'traced' if len(traces) > before else 'reused a trace'}")
print("traces in all:", len(traces), "=", scaled.experimental_get_tracing_count())

signature_traces = []


@tf.function(input_signature=[tf.TensorSpec([None], tf.float64), tf.TensorSpec([], tf.float64)])
def scaled_fixed(x, factor):
    signature_traces.append(1)
    return x * factor


for n in (3, 5, 8):
    scaled_fixed(tf.ones([n], tf.float64), tf.constant(0.5, tf.float64))
print("with an input signature, lengths 3, 5 and 8:", len(signature_traces), "trace")

# %% [markdown]
# The `tf-eager` engine uses no `tf.function`: it is the engine that runs every operation as
# Python reaches it, the way this part teaches (and the way to debug: a `print` or a breakpoint
# inside the step sees the values). Part III builds the whole step once and runs it, which is
# what a traced `tf.function` does too.
#
# ## (d) The model in TensorFlow operations, time-major
#
# The TensorFlow engines share one function, `_tf_model.forward(params, inputs, state, config,
# masks)`, that writes the equations of Part I (b) with TensorFlow operations. `params` is a
# dict from the canonical names to variables (or tensors); `inputs` the ids [B, T] as a tensor
# (row r is one stream of text, Part I (a)); `state` a list of one `(h, c)` pair [B, H] per
# layer; `masks` Part I's list of L + 1 dropout masks [T, B, H], $m^{(0)}, \dots, m^{(L)}$, as
# tensors of the model's dtype, or `None` (no dropout). It returns the logits [T·B, V] and the
# final state, a list of `(h, c)` pairs. It works **time-major**, as the reference engine does,
# and does exactly this, in this order:
#
# 1. `ids = tf.transpose(inputs)` (with no `perm`, `tf.transpose` reverses the axes: [B, T]
#    becomes [T, B]): [T, B], so that everything after it is [T, B, ...] and
#    `x[t]` is the whole batch at time t, [B, H], the slice the loop over time needs.
# 2. `x = tf.nn.embedding_lookup(params["embedding"], ids)`: [T, B, H], the $e_t = E[w_t]$.
# 3. For each layer l = 0, ..., L − 1:
#    1. with masks, `x = x * masks[l]`: for l = 0 that is $x^{(0)} = m^{(0)} \odot e$, for
#       l ≥ 1 $x^{(l)} = m^{(l)} \odot h^{(l-1)}$ (x holds the layer below's outputs);
#    2. `projected`: the input projection $x_t W + b$ of every time step as one product, `x`
#       reshaped to [T·B, H] times W [H, 4H], plus b, reshaped back to [T, B, 4H] (only
#       $h_{t-1} U$ needs the loop);
#    3. `h, c = state[l]`, then for t = 0, ..., T − 1: `z = projected[t] + tf.matmul(h, U)`
#       [B, 4H], `z_i, z_f, z_g, z_o = tf.split(z, 4, axis=1)`,
#       `c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_g)`,
#       `h = tf.sigmoid(z_o) * tf.tanh(c)`, and h is kept in a list `outputs`;
#    4. the last `(h, c)` goes into the final state, and `x = tf.stack(outputs)` [T, B, H]: this
#       layer's outputs, the next layer's input before its mask.
# 4. With masks, `x = x * masks[L]`: the top output after dropout, $x^{(L)} = m^{(L)} \odot
#    h^{(L-1)}$.
# 5. `logits = tf.matmul(tf.reshape(x, [-1, H]), W_s) + b_s`: one [T·B, V] matrix, $y = x^{(L)}
#    W_s + b_s$, whose row $t \cdot B + r$ is time t of stream r (the reshape keeps the [T, B]
#    order, time first). So the targets, [B, T] like the inputs, are transposed the same way
#    before they are flattened (`summed_nll`), or every row would be scored against another
#    position's word.
#
# The h and c carried through the loop are plain Python names rebound at each step (no [T + 1]
# arrays as in the reference engine: the tape keeps what the backward pass needs). Beside the
# reference engine (Part I), statement by statement:
#
# | equation | reference engine (NumPy, Part I) | `_tf_model.forward` |
# |---|---|---|
# | $e_t = E[w_t]$ | `x = p["embedding"][ids]` | `x = tf.nn.embedding_lookup(params["embedding"], ids)` |
# | $x^{(0)} = m^{(0)} \odot e$ | `x = x * masks[0]`, before the loop over layers | `x = x * masks[layer]` at the top of the loop, layer 0 |
# | $x^{(l)} = m^{(l)} \odot h^{(l-1)}$, l = 1..L − 1 | `x = x * masks[layer + 1]` at the end of layer `layer` | `x = x * masks[layer]` at the top of the loop |
# | $x^{(L)} = m^{(L)} \odot h^{(L-1)}$ (top) | `x = x * masks[layer + 1]` at the end of the last layer | `x = x * masks[config.num_layers]` after the loop |
# | $x_t W + b$ | inside the loop, `x[t] @ W + ... + b` | once for all steps: `tf.matmul(tf.reshape(x, [-1, hidden]), kernel) + bias` |
# | $z_t = \ldots + h_{t-1} U$ | `h[t] @ U` | `projected[t] + tf.matmul(h, recurrent)` |
# | i, f, g, o | `sigmoid(z[:, 0 * H:1 * H])`, ... | `z_i, z_f, z_g, z_o = tf.split(z, 4, axis=1)` |
# | $c_t = f \odot c_{t-1} + i \odot g$ | `c[t + 1] = f[t] * c[t] + i[t] * g[t]` | `c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_g)` |
# | $h_t = o \odot \tanh c_t$ | `h[t + 1] = o[t] * np.tanh(c[t + 1])` | `h = tf.sigmoid(z_o) * tf.tanh(c)` |
# | $y = (m^{(L)} \odot h^{(L-1)}) W_s + b_s = x^{(L)} W_s + b_s$ | `x @ p["softmax_kernel"] + p["softmax_bias"]`, x masked, [T, B, V] | `tf.matmul(tf.reshape(x, [-1, hidden]), params["softmax_kernel"]) + params["softmax_bias"]`, x masked, [T·B, V] |
# | $-\log p_t[w_{t+1}]$ | `log_softmax`, `nll` | `tf.nn.sparse_softmax_cross_entropy_with_logits` |
#
# `tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)`, with labels
# [N] ids and logits [N, V], is $-\log \mathrm{softmax}(y)[\text{label}]$ of every row, [N],
# computed stably as Part I (d) does. `summed_nll(logits, targets)` is its sum with
# `labels = tf.reshape(tf.transpose(targets), [-1])`. There is no backward pass to write:
# everything after the loss is `tape.gradient`.
#
# **The ids' dtype.** The batches are NumPy int32 arrays, and `tf.constant(inputs)` keeps that:
# an int32 tensor. `tf.nn.embedding_lookup` takes int32 or int64 ids, and
# `sparse_softmax_cross_entropy_with_logits` int32 or int64 labels, so the ids go in as they
# are, with no cast (the float dtype of the logits does not matter to the labels). Another dtype
# is refused (a float or uint16 id array: `InvalidArgumentError`). The comparison below prints
# the dtypes and runs the loss from int64 ids too.

# %%
from ptb_lstm.engines import _tf_model

show_source(_tf_model.forward)
show_source(_tf_model.summed_nll)

# %% [markdown]
# Both against the reference engine, on the first PTB batch of a small model (Part I's
# `ReferenceEngine`, float64, from the same weights and a zero state): the reference's logits are
# [T, B, V], `forward`'s [T·B, V] in the same order, and the loss is `summed_nll` over B.
#
# **Two measures of error**, used here and below, each one number per array, with $a$ the
# reference's value and $\hat a$ the TensorFlow one:
#
# * the **relative error** $\max|a - \hat a| / \max|a|$ over the whole array (for a scalar,
#   $|a - \hat a| / |a|$), Part I's measure: for the logits, the loss, the gradient norm and the
#   carried state, values computed afresh from the batch. Here it is `tf_relative_error(reference,
#   other)`, **the reference first**, where Part I's `relative_error(got, expected)` takes it
#   second: both divide by the reference's largest entry, so `tf_relative_error(a, a_hat)` is
#   Part I's `relative_error(a_hat, a)`, the same number;
# * the **error relative to the update**, for weights after a training step:
#   $\max|\theta' - \hat\theta'| / \max|\theta' - \theta|$, with $\theta$ the weights before the
#   step, the same for both, and $\theta'$ the reference's after it. One step changes most
#   weights little: in the small config the typical entry of a kernel moves by about $10^{-4}$
#   of the array's largest weight, and a kernel's largest change is 2 to 13 % of it (the softmax
#   kernel's 89 %; the biases, which start within ±0.1, move more; the embedding's rows not in
#   the batch do not move at all; the cell of (g) prints the figures). Measured against the
#   weights, an error in the update would be shrunk by that factor and could hide under the
#   weights' size. Divided by the update, the error says how far the TensorFlow step's change is
#   from the reference's change, which is what the step computes; the weights before the step
#   are the same for both and cannot differ.
#
# **The weights' error, in this part, is the error relative to the update.** Part I measured
# weights after a step with its relative error, relative to the weights themselves:
# $\max|\theta' - \hat\theta'| / \max|\theta'|$. The two share the numerator, so Part I's
# measure is this one times $\max|\theta' - \theta| / \max|\theta'|$, the step's largest change
# over the largest weight: smaller, by the factor (g) prints. The check table of (g) shows both;
# the agreement table of (h), over several steps, uses Part I's.

# %%
from ptb_lstm.data import batches
from ptb_lstm.engines.numpy_reference import ReferenceEngine
from ptb_lstm.params import init_params


def tf_relative_error(reference, other):
    """max |reference - other| / max |reference| over the whole array."""
    reference, other = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    return float(np.abs(reference - other).max() / np.abs(reference).max())


little = PRESETS["small"].replace(hidden_size=8, num_steps=5, batch_size=3)  # shrunk
little_params = init_params(little, corpus.vocab_size, np.float64)
reference = ReferenceEngine(little, little_params, dtype="float64")
inputs, targets = next(batches(corpus.train, little.batch_size, little.num_steps))
zeros = [(np.zeros((3, 8)), np.zeros((3, 8)))] * little.num_layers
fwd = reference.forward(inputs, zeros)
params_tf = {name: tf.Variable(value, name=name) for name, value in little_params.items()}
state_tf = [(tf.constant(h), tf.constant(c)) for h, c in zeros]
logits, final_state = _tf_model.forward(params_tf, tf.constant(inputs), state_tf, little)
print("inputs", inputs.shape, "[B, T]; forward's logits", logits.shape, "[T*B, V]")
print("ids:", inputs.dtype, "in NumPy, as a tensor", tf.constant(inputs).dtype.name)
T, B = little.num_steps, little.batch_size
print(
    "logits against the reference's, reshaped to [T, B, V]:",
    f"{tf_relative_error(fwd.logits, tf.reshape(logits, [T, B, -1])):.1e}",
)
loss_ref = float(reference.nll(reference.log_softmax(fwd.logits), targets.T).sum()) / B
loss_tf = float(_tf_model.summed_nll(logits, tf.constant(targets))) / B
print(f"loss: reference {loss_ref:.15f}, TensorFlow {loss_tf:.15f}")
as_int64 = float(_tf_model.summed_nll(logits, tf.constant(targets.astype(np.int64)))) / B
print(f"the same from int64 targets: {as_int64:.15f}")
assert as_int64 == loss_tf
wrong = (
    float(
        tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.reshape(targets, [-1]), logits=logits
            )
        )
    )
    / B
)
print(f"and with the targets flattened without the transpose: {wrong:.15f} (wrong)")
assert tf_relative_error(fwd.logits, tf.reshape(logits, [T, B, -1])) < 1e-13

# %% [markdown]
# ## (e) The embedding's gradient arrives as `IndexedSlices`
#
# The embedding lookup reads only the rows of the batch's words, so the gradient of $E$ is zero
# everywhere else (Part I (e), step 9). Instead of a dense [10,000, 200] array the tape returns a
# `tf.IndexedSlices`, a sparse description of a [V, H] array in three tensors:
#
# * `indices` [N], the row read at each position (one per position, repeats included);
# * `values` [N, H], the gradient arriving at each position, one row each, `values[k]` belonging
#   to row `indices[k]`;
# * `dense_shape`, the shape of the dense array it stands for, here `[V, H]` (an int32 tensor),
#   which the indices and values alone do not tell.
#
# `tf.IndexedSlices(values, indices, dense_shape)` makes one (the `dense_shape` may be left out
# where nothing needs it, as in `scatter_sub`). Turned into a dense array
# (`tf.convert_to_tensor(slices)`), repeated indices add up — the reference engine's scatter-add
# `np.add.at`. A small example, with a word (row 1) used twice:

# %%
E = tf.Variable(np.arange(12.0).reshape(6, 2))  # a 6-word embedding of width 2
ids = tf.constant([1, 4, 1])
upstream = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], tf.float64)  # some dL/dx per position
with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.nn.embedding_lookup(E, ids) * upstream)
grad = tape.gradient(loss, E)
print(type(grad).__name__, "indices", grad.indices.numpy(), "values", grad.values.numpy().tolist())
print("dense_shape", grad.dense_shape.numpy(), "(E's shape)")
dense = np.zeros((6, 2))
np.add.at(dense, ids.numpy(), upstream.numpy())  # the reference's way
assert (tf.convert_to_tensor(grad).numpy() == dense).all()
print("as a dense gradient (row 1 = [1, 2] + [5, 6]):\n", dense)

# %% [markdown]
# The model looks up ids [T, B], not a list: `embedding_lookup` then returns [T, B, H], and the
# gradient's slices are flattened in the same row-major order: `indices` is 1-D, of length T·B,
# the ids read row by row (position $t \cdot B + r$ is time t of stream r), and `values` is
# [T·B, H]. With T = 3 steps of B = 2 streams:

# %%
ids_2d = np.array([[1, 4], [1, 2], [5, 1]])  # [T, B] = [3, 2], NumPy int64
upstream_2d = tf.constant(np.arange(12.0).reshape(3, 2, 2))  # some dL/dx, [T, B, H]
with tf.GradientTape() as tape:
    looked_up = tf.nn.embedding_lookup(E, tf.constant(ids_2d))  # [3, 2, 2]
    loss = tf.reduce_sum(looked_up * upstream_2d)
grad_2d = tape.gradient(loss, E)
print("lookup", looked_up.shape, "| indices", grad_2d.indices.shape, grad_2d.indices.numpy())
print("values", grad_2d.values.shape, "= upstream reshaped to [T*B, H]:", end=" ")
print((grad_2d.values.numpy() == upstream_2d.numpy().reshape(-1, 2)).all())

# %% [markdown]
# Two things follow. **The norm**: $\lVert[1,2]\rVert^2 + \lVert[5,6]\rVert^2$ is not
# $\lVert[6,8]\rVert^2$, so the norm used for clipping must be taken after the repeated rows are
# summed, or the TensorFlow engines would clip differently from the NumPy ones:
# `tf.linalg.global_norm` squares an `IndexedSlices`' values as they are, repeated rows unmerged
# (the cell prints both). There are two ways to merge them. `tf.convert_to_tensor(grad)` makes the
# dense [V, H] array, simple and correct, at the cost of a [10,000, 200] array of mostly zeros at
# every step. `_tf_model.sum_duplicate_rows` keeps it sparse, in two operations:
#
# * `rows, position = tf.unique(gradient.indices)`: `tf.unique(x)` takes a **1-D** tensor only
#   (the slices' `indices` are 1-D whatever the shape of the ids, as shown above) and returns a
#   pair: `rows`, the distinct row indices in the order of first appearance, and `position`, of
#   x's length, the index in `rows` of each entry of x, so that `x[k] == rows[position[k]]`. For
#   `[1, 4, 1]` that is `rows = [1, 4]`, `position = [0, 1, 0]`. (Both come back int32 here; a
#   2-D x is refused with `InvalidArgumentError: unique expects a 1D vector`.)
# * `tf.math.unsorted_segment_sum(data, segment_ids, num_segments)` returns a tensor of
#   `num_segments` rows whose row j is the sum of the rows `data[k]` with `segment_ids[k] == j`
#   (zeros where none has). `num_segments` must be given, as a Python int or a scalar tensor: the
#   function does not take it from `segment_ids`. Here
#   `tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])`: one row per
#   distinct row index, the values that share it added up.
#
# The result, `tf.IndexedSlices(summed, rows, gradient.dense_shape)`, stands for the same dense
# array, each row index once. **The update**: `variable.scatter_sub` subtracts the
# clipped, scaled rows from only those rows of the variable, leaving every other row untouched,
# as the `numpy` engine's sparse update does (a word not in the batch is not moved by SGD).

# %%
rows, position = tf.unique(grad.indices)  # indices [1, 4, 1]
print("tf.unique: rows", rows.numpy(), "position", position.numpy())
summed = tf.math.unsorted_segment_sum(grad.values, position, tf.shape(rows)[0])
print("unsorted_segment_sum over position, 2 segments:", summed.numpy().tolist())
merged = _tf_model.sum_duplicate_rows(grad)
print("merged: indices", merged.indices.numpy(), "values", merged.values.numpy().tolist())
print(
    f"global norm of the raw slices {float(tf.linalg.global_norm([grad])):.4f}, of the merged "
    f"ones {float(tf.linalg.global_norm([merged])):.4f}, of the dense array "
    f"{np.sqrt((dense**2).sum()):.4f}"
)
E.scatter_sub(tf.IndexedSlices(0.5 * merged.values, merged.indices))
print("E after a step of 0.5 on rows 1 and 4 only:\n", E.numpy())
show_source(_tf_model.sum_duplicate_rows)

# %% [markdown]
# ## (f) Clipping by the global norm, and the SGD update
#
# Part I (g)'s update, in TensorFlow operations: the global norm of all the gradients (the
# embedding's merged), the scale $\text{max\_grad\_norm} / \max(n, \text{max\_grad\_norm})$, and
# $\theta \leftarrow \theta - \eta \cdot \text{scale} \cdot \delta\theta$ on every variable, with
# `assign_sub`, or `scatter_sub` for the embedding's rows. `tf.linalg.global_norm(list)` is
# $\sqrt{\sum_\theta \lVert\delta\theta\rVert^2}$, where an `IndexedSlices` counts as its
# `values`, squared as they are.
#
# TensorFlow's own `tf.clip_by_global_norm(list, clip_norm)` returns `(clipped list, norm)`:
# the norm is `tf.linalg.global_norm(list)`, and every gradient is multiplied by
# `clip_norm / max(norm, clip_norm)`; an `IndexedSlices` comes back as an `IndexedSlices`, its
# values scaled and its indices kept (it is not made dense). So on the tape's raw embedding
# gradient it takes the norm of the unmerged slices, the wrong one of (e) as soon as a word
# occurs twice in the batch, and whenever that norm or the right one exceeds `clip_norm` it also
# scales by the wrong factor. It computes Part I's norm and scale exactly when every
# `IndexedSlices` in the list names each row once: after `sum_duplicate_rows`, or for a batch
# without repeated words. On the gradient of (e), raw and merged:

# %%
for label, slices in (("raw", grad), ("merged", merged)):
    (clipped,), clip_norm = tf.clip_by_global_norm([slices], 1.0)
    print(
        f"{label:<6} norm {float(clip_norm):.4f}; returns {type(clipped).__name__}, indices "
        f"{clipped.indices.numpy()}, values {np.round(clipped.values.numpy(), 4).tolist()}"
    )
assert abs(float(tf.clip_by_global_norm([merged], 1.0)[1]) - np.sqrt((dense**2).sum())) < 1e-12

# %% [markdown]
# The toolkit writes the clipping out instead, merging first, so that the norm is right whatever
# the batch, and so that one scalar, the learning rate times the scale, multiplies each gradient
# once. Every number that enters as a tensor is made in the norm's dtype: in float64,
# `tf.constant(5.0)` alone would be float32 and the product an error (a). Written out:


# %%
def sgd_with_clipping(variables, gradients, learning_rate, max_grad_norm):
    """Clip ``gradients`` (one per variable, in the same order; the embedding's as
    IndexedSlices) by their global norm and take an SGD step on ``variables``, in place;
    returns the norm before clipping."""
    gradients = [_tf_model.sum_duplicate_rows(g) for g in gradients]  # each row once
    norm = tf.linalg.global_norm(gradients)  # sqrt(sum of every entry squared)
    max_norm = tf.constant(max_grad_norm, norm.dtype)
    step = tf.constant(learning_rate, norm.dtype) * max_norm / tf.maximum(norm, max_norm)
    for variable, gradient in zip(variables, gradients, strict=True):
        if isinstance(gradient, tf.IndexedSlices):  # the embedding: only the batch's rows
            variable.scatter_sub(tf.IndexedSlices(step * gradient.values, gradient.indices))
        else:
            variable.assign_sub(step * gradient)
    return norm


# %% [markdown]
# The engine calls `_tf_model.clipped_sgd(variables, gradients, learning_rate, max_grad_norm)`,
# which does exactly this and returns `(updates, norm)`: `updates` is the list of what each
# `assign_sub` and `scatter_sub` returned (run eagerly, the variables themselves, already
# changed), `norm` the global norm before clipping. An eager step uses the norm and drops the
# first item (`_`). Both on the gradients of the small model's
# batch of (d), from two copies of its weights, with `max_grad_norm` lowered to 0.5 so that
# clipping acts:

# %%
names = list(little_params)  # the canonical order of Part I (b)
with tf.GradientTape() as tape:
    logits, _ = _tf_model.forward(params_tf, tf.constant(inputs), state_tf, little)
    loss = _tf_model.summed_nll(logits, tf.constant(targets)) / B  # B: a Python int
gradients = tape.gradient(loss, [params_tf[n] for n in names])
print({n: type(g).__name__ for n, g in zip(names, gradients, strict=True)})
mine = [tf.Variable(little_params[n]) for n in names]
engines = [tf.Variable(little_params[n]) for n in names]
norm = sgd_with_clipping(mine, gradients, 1.0, 0.5)
_, engine_norm = _tf_model.clipped_sgd(engines, gradients, 1.0, 0.5)
print(f"norm {float(norm):.6f} (clipped to 0.5), the engine's {float(engine_norm):.6f}")
assert all((a.numpy() == b.numpy()).all() for a, b in zip(mine, engines, strict=True))
moved = np.flatnonzero((mine[0].numpy() != little_params["embedding"]).any(axis=1))
print("embedding rows moved:", moved, "= the batch's input words", np.unique(inputs))

# %% [markdown]
# ## (g) The whole training step, against Part I's
#
# Put together, one step is: the forward pass from the carried state and the loss, inside a tape;
# the gradients of every variable, in one `tape.gradient` call; clipping and SGD; the final state
# carried on. Three details, as in Part I (g):
#
# * **The loss** is summed over time and divided by B, inside the tape (so that the gradients
#   carry the 1/B). It is the loss before the update. B is divided by as the Python int
#   `inputs.shape[0]`: a Python number in an operation with a tensor is converted to that
#   tensor's dtype (a), so 20 becomes 20.0 in the model's dtype, float32 or float64, exactly
#   (every integer up to $2^{24}$ is exact in float32), with no tensor to make. The engine of (h)
#   writes `/ tf.cast(inputs.shape[0], self.tf_dtype)` instead: the same 20.0 in the same dtype,
#   so the same quotient to the last bit (the cell after `tf_train_step` checks it). The cast
#   names the dtype in plain sight, and the line would still be right were B a tensor, such as
#   `tf.shape(inputs)[0]`, an int32 tensor, which a float tensor refuses to be divided by (two
#   tensors, (a)). A bare `tf.constant(20.0)` would be float32, refused in a float64 model.
# * **The carried state** enters as a plain tensor, the previous step's final state: computed
#   before this tape started, it is a constant to the tape (b), so the gradient stops at the batch
#   boundary — truncated BPTT (Part I (e)) with nothing to write. The final state that goes on is
#   this forward pass's (the old weights); it is not recomputed after the update.
# * **The dropout masks** (Part I (b)) come as NumPy arrays of whatever dtype the caller drew
#   them in: `step_masks` gives float32 unless asked for another, and the checks below draw
#   float64 masks and pass them to float32 steps too. `tf_train_step` converts each with
#   `tf.constant(m, tf_dtype)`, the model's dtype: `tf.constant` with a dtype converts a NumPy
#   array (a), so a float64 mask becomes a float32 tensor in a float32 model, as the reference
#   engine's `np.asarray(m, dtype)` makes it a float32 array. Without the dtype, `tf.constant(m)`
#   would keep the array's, and a mask of another dtype than the activations would be refused
#   (two tensors). (The ids need no dtype: (d).)
#
# `tf_dtype` is TensorFlow's `tf.DType` of the variables (`variables["embedding"].dtype`), the
# name the engine of (h) gives it; (h)'s `dtype` is the string NumPy uses, `"float32"`. It is
# not a pure function: it updates the variables it is given in place, and returns only the loss,
# the norm and the final state (`eager_step_function` below wraps it into Part I's pure form):


# %%
def tf_train_step(variables, state, inputs, targets, learning_rate, config, masks=None):
    """One SGD step on ``variables`` (canonical name -> tf.Variable, updated in place) from
    ``state`` ((h, c) tensors [B, H] per layer); ``inputs``, ``targets`` [B, T] NumPy ids;
    ``masks``: L + 1 NumPy arrays [T, B, H] of any float dtype, or None. Returns (loss, norm,
    final state)."""
    tf_dtype = variables["embedding"].dtype  # a tf.DType: tf.float32 or tf.float64
    if masks is not None:
        masks = [tf.constant(m, tf_dtype) for m in masks]  # converted to the model's dtype
    names = list(variables)
    with tf.GradientTape() as tape:
        logits, final_state = _tf_model.forward(
            variables, tf.constant(inputs), state, config, masks
        )
        loss = _tf_model.summed_nll(logits, tf.constant(targets)) / inputs.shape[0]  # int B
    gradients = tape.gradient(loss, [variables[n] for n in names])
    norm = sgd_with_clipping(
        [variables[n] for n in names], gradients, learning_rate, config.max_grad_norm
    )
    return float(loss), float(norm), final_state


# %%
sums = np.random.default_rng(0).uniform(0.0, 2000.0, 1000)  # a thousand summed losses
for tf_dtype in (tf.float32, tf.float64):
    summed = tf.constant(sums, tf_dtype)
    by_int, by_cast = summed / 20, summed / tf.cast(20, tf_dtype)  # (g)'s B and (h)'s
    same = bool(tf.reduce_all(by_int == by_cast))
    print(f"{tf_dtype.name}: / 20 gives {by_int.dtype.name}, the same as / tf.cast: {same}")
    assert same and by_int.dtype == tf_dtype

# %% [markdown]
# Against Part I's reference engine on one batch (the first PTB batch, 20 × 20, from the same
# seeded weights and zero state): the loss, the gradient norm and the final state (relative
# errors), and the weights after the update, relative to the update (this part's measure, (d))
# and, beside it, relative to the weights (Part I's). Three cases, so that every path of the
# step is run:
#
# * the **small config** as it is: no dropout (no masks), and a gradient norm of about 3.0,
#   below its `max_grad_norm` of 5, so that clipping does not act (scale 1);
# * the small config with **dropout 0.5**: the masks of step 0 from the toolkit's
#   `step_masks(config, 0, dtype=np.float64)` (Part I (b)), the same arrays given to both steps;
# * the small config with **`max_grad_norm` lowered to 1**, below the norm, so that clipping
#   acts and every gradient is scaled by 1 / norm.
#
# `errors_on_one_batch` runs any step given as a function and returns its errors;
# `reference_train_step` is the reference engine's.

# %%
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines.numpy_reference import ReferenceEngine


def reference_train_step(config, params, inputs, targets, dtype, masks=None):
    """Part I's train_step from a zero state: (loss, norm, params after, final state)."""
    engine = ReferenceEngine(config, params, dtype=dtype)
    engine.reset_state(inputs.shape[0])
    loss = engine.train_step(inputs, targets, config.learning_rate, masks)
    return loss, engine.last_grad_norm, engine.get_params(), engine.get_state()


def errors_on_one_batch(step, config, dtype):
    """Errors of step(config, params, inputs, targets, dtype, masks) -> (loss, norm, params,
    state) against the reference engine's, on the first PTB batch of ``config``, with the masks
    of its step 0 (None without dropout)."""
    params = init_params(config, corpus.vocab_size, np.float64)
    inputs, targets = next(batches(corpus.train, config.batch_size, config.num_steps))
    masks = step_masks(config, 0, dtype=np.float64)
    expected = reference_train_step(config, params, inputs, targets, dtype, masks)
    got = step(config, params, inputs, targets, dtype, masks)
    update = max(
        float(np.abs(got[2][n] - expected[2][n]).max())
        / float(np.abs(expected[2][n] - params[n].astype(dtype)).max())
        for n in params
    )
    state = max(
        tf_relative_error(a, b)
        for pair, other in zip(expected[3], got[3], strict=True)
        for a, b in zip(pair, other, strict=True)
    )
    moved = {  # largest and median change of each array, over its largest weight
        n: (
            float(np.abs(expected[2][n] - params[n]).max()) / float(np.abs(params[n]).max()),
            float(np.median(np.abs(expected[2][n] - params[n]))) / float(np.abs(params[n]).max()),
        )
        for n in params
    }
    return {
        "loss": abs(got[0] - expected[0]) / abs(expected[0]),
        "norm": abs(got[1] - expected[1]) / expected[1],
        "update": update,
        "weights": max(tf_relative_error(expected[2][n], got[2][n]) for n in params),  # Part I's
        "state": state,
        "reference norm": expected[1],
        "clipped": expected[1] > config.max_grad_norm,
        "masks": masks is not None,
        "moved": moved,
    }


ERRORS = ("loss", "norm", "update", "state")


def written_out(config, params, inputs, targets, dtype, masks):
    """tf_train_step above, from a zero state."""
    variables = {n: tf.Variable(np.asarray(v, dtype), name=n) for n, v in params.items()}
    zeros = tf.zeros([inputs.shape[0], config.hidden_size], dtype)
    state = [(zeros, zeros)] * config.num_layers
    loss, norm, final = tf_train_step(
        variables, state, inputs, targets, config.learning_rate, config, masks
    )
    return (
        loss,
        norm,
        {n: v.numpy() for n, v in variables.items()},
        [(h.numpy(), c.numpy()) for h, c in final],
    )


def print_errors(label, errors):
    print(
        f"{label:<31} {errors['loss']:>8.1e} {errors['norm']:>8.1e} {errors['update']:>10.1e} "
        f"{errors['weights']:>11.1e} {errors['state']:>8.1e}"
    )


small = PRESETS["small"]
CASES = {
    "small": small,
    "small, dropout 0.5": small.replace(dropout=0.5),
    "small, max_grad_norm 1": small.replace(max_grad_norm=1.0),
}


def all_cases(step):
    """errors_on_one_batch of ``step`` for every case of CASES, in float64 and float32, printed."""
    found = {}
    for dtype in ("float64", "float32"):
        for label, config in CASES.items():
            errors = found[label, dtype] = errors_on_one_batch(step, config, dtype)
            if dtype == "float64":
                print(
                    f"{label}: masks {'yes' if errors['masks'] else 'none'}, norm "
                    f"{errors['reference norm']:.3f}, max_grad_norm {config.max_grad_norm:g}: "
                    f"{'clipped' if errors['clipped'] else 'not clipped'}"
                )
    print("the step's change (small, float64) over each array's largest weight: largest, median")
    for name, (largest, median) in found["small", "float64"]["moved"].items():
        print(f"  {name:<24} {largest:.1e}  {median:.1e}")
    print(f"{'errors':<31} {'loss':>8} {'norm':>8} {'weights:':>10} {'weights:':>11} {'state':>8}")
    print(f"{'':<31} {'':>8} {'':>8} {'of update':>10} {'of weights':>11}")
    for (label, dtype), errors in found.items():
        print_errors(f"{label}, {dtype}", errors)
    return found


def worst_float64(found):
    """The largest float64 error in all_cases' results."""
    return max(e[k] for (_, dtype), e in found.items() if dtype == "float64" for k in ERRORS)


written = all_cases(written_out)
assert [written[label, "float64"]["clipped"] for label in CASES] == [False, False, True]
assert written["small, dropout 0.5", "float64"]["masks"]
assert worst_float64(written) < 1e-11

# %% [markdown]
# **float64: the same function.** The loss, the norm and the state agree to a few times
# $10^{-16}$, a few roundings of float64 (each of its operations is exact to about
# $1.1 \cdot 10^{-16}$ of its result), in all three cases: with the masks, and with the scale of
# the clipping. The weights agree to a few times $10^{-15}$ to $10^{-14}$ of the update: a
# weight after the step is rounded to about $10^{-16}$ of its size, and a kernel's largest
# change is a few hundredths to about a tenth of its largest weight (printed above), so that
# rounding alone is of that order; relative to the weights (Part I's measure, the next column)
# the same differences are below $10^{-15}$. The assertion, on the loss, the norm, the
# state and the weights relative to the update, allows $10^{-11}$:
# a thousand times what is measured, so that a machine whose BLAS sums in another order passes,
# and still $10^{8}$ times below what a real difference in what is computed gives — a missing
# transpose, the 1/B forgotten, a mask missed, the repeated embedding rows counted apart in the
# norm give errors of $10^{-4}$ to 1 (the exercises show some).
#
# **float32: the same function, rounded differently.** float32 keeps 24 bits, about $6 \cdot
# 10^{-8}$ of each result, and the two engines do not perform the same operations in the same
# order: TensorFlow makes the input projections of all T steps one product where the reference
# engine makes T, its matrix products (Eigen and oneDNN kernels) add the terms of each sum in
# another order than NumPy's BLAS, and its fused `sparse_softmax_cross_entropy_with_logits`
# rounds the log-sum-exp differently from Part I's `log_softmax`. Each step of each sum rounds
# differently, the differences are of the order of float32's precision times the size of the
# sums, and they reach about $10^{-8}$ to $10^{-5}$ of the loss, the norm and the update after
# one step. They are not a mistake: float64 shows the computation is the same, and float32 shows
# how far two correct roundings of it lie apart. No assertion is made on them. Over many steps of
# SGD such differences grow (the full runs below).
#
# **Part I's pure form.** `tf_train_step` changes its variables in place. Part I (g) wrote the
# step as two pure functions instead, `step_function(params, state, inputs, targets, masks)`
# returning `(loss, gradients, new state)` and `update_function(params, gradients,
# learning_rate, max_grad_norm)` returning `(new params, norm)`. `eager_step_function` is the two
# in one, built on `tf_train_step`: it takes `step_function`'s arguments, NumPy arrays, with the
# learning rate and the `config` (for `max_grad_norm` and the number of layers, which
# `_tf_model.forward` reads from it), and returns `(loss, new params, new state, norm)`:
# `step_function`'s loss and new state with the new params in the gradients' place, then
# `update_function`'s norm. It makes new variables from `params` at every call, and reads them
# back as new arrays.
#
# **Variables made at every call are fine in eager mode.** A `tf.Variable` is then a Python
# object holding its own copy of the array it was made from (a); it is freed when nothing refers
# to it any more, like a NumPy array. (Inside a `tf.function` it is otherwise: variables may be
# made in the first trace only, and a function that makes one at every call is refused with a
# `ValueError`.) The check: from a carried state (the state of a first step), the tiny config
# with dropout 0.5 and `max_grad_norm` 1 (clipping acts), float64 and float32; the function is
# called twice with the same arguments, which must give the same results to the last bit and
# leave the arguments as they were, and once more beside the reference engine's `train_step`,
# with (g)'s measures and limit of $10^{-11}$ in float64.


# %%
def eager_step_function(params, state, inputs, targets, learning_rate, config, masks=None):
    """tf_train_step as a pure function, in Part I's form: params name -> NumPy array, state
    (h, c) NumPy arrays [B, H] per layer. Returns (loss, new params, new state, norm), new NumPy
    arrays; changes none of its arguments."""
    variables = {n: tf.Variable(v, name=n) for n, v in params.items()}  # copies of params (a)
    state = [(tf.constant(h), tf.constant(c)) for h, c in state]
    loss, norm, final_state = tf_train_step(
        variables, state, inputs, targets, learning_rate, config, masks
    )
    new_params = {n: v.numpy() for n, v in variables.items()}  # .numpy() copies (a)
    new_state = [(h.numpy(), c.numpy()) for h, c in final_state]
    return loss, new_params, new_state, norm


def check_eager_step_function(dtype):
    """eager_step_function from a carried state, twice, against the reference engine's
    train_step: (same results twice, arguments unchanged, loss, update and state errors)."""
    config = PRESETS["tiny"].replace(dropout=0.5, max_grad_norm=1.0)
    params = init_params(config, corpus.vocab_size, np.float64)
    reference_engine = ReferenceEngine(config, params, dtype=dtype)
    stream = batches(corpus.train, config.batch_size, config.num_steps)
    reference_engine.train_step(*next(stream), 1.0, step_masks(config, 0, dtype=np.float64))
    params, state = reference_engine.get_params(), reference_engine.get_state()  # copies
    kept = {n: a.copy() for n, a in params.items()}, [(h.copy(), c.copy()) for h, c in state]
    (inputs, targets), masks = next(stream), step_masks(config, 1, dtype=np.float64)
    first = eager_step_function(params, state, inputs, targets, 1.0, config, masks)
    again = eager_step_function(params, state, inputs, targets, 1.0, config, masks)
    same = (
        first[0] == again[0]
        and first[3] == again[3]
        and all((first[1][n] == again[1][n]).all() for n in params)
        and all(
            (a == b).all()
            for p, q in zip(first[2], again[2], strict=True)
            for a, b in zip(p, q, strict=True)
        )
    )
    unchanged = all((params[n] == kept[0][n]).all() for n in params) and all(
        (a == b).all()
        for p, q in zip(state, kept[1], strict=True)
        for a, b in zip(p, q, strict=True)
    )
    expected_loss = reference_engine.train_step(inputs, targets, 1.0, masks)
    expected_params, expected_state = reference_engine.get_params(), reference_engine.get_state()
    loss, new_params, new_state, norm = first
    update = max(
        float(np.abs(new_params[n] - expected_params[n]).max())
        / float(np.abs(expected_params[n] - params[n]).max())
        for n in params
    )
    state_error = max(
        tf_relative_error(a, b)
        for p, q in zip(expected_state, new_state, strict=True)
        for a, b in zip(p, q, strict=True)
    )
    loss_error = abs(loss - expected_loss) / abs(expected_loss)
    print(
        f"{dtype}: norm {norm:.3f} (clipped to 1); same twice: {same}; arguments unchanged: "
        f"{unchanged}; errors: loss {loss_error:.1e}, weights (of the update) {update:.1e}, "
        f"state {state_error:.1e}"
    )
    return same, unchanged, max(loss_error, update, state_error)


for dtype in ("float64", "float32"):
    same, unchanged, worst = check_eager_step_function(dtype)
    assert same and unchanged and (dtype == "float32" or worst < 1e-11)

# %% [markdown]
# ## (h) The engine, attribute by attribute
#
# `TFEagerEngine` wraps that step behind the toolkit's `Engine` contract (`ptb_lstm/engines/
# __init__.py`), which the trainer, the evaluation and the checkpoints use for every engine.
# What its code uses, and where each comes from:
#
# | name | what it is | defined in |
# |---|---|---|
# | `config` | the `Config`: `num_layers`, `hidden_size`, `max_grad_norm`, `optimizer`, ... | `Engine.__init__` |
# | `dtype` | `"float32"` or `"float64"`, a string: NumPy's name of the type of the maths, used to make NumPy arrays (`np.asarray(x, self.dtype)`) | `Engine.__init__` |
# | `tf_dtype` | the same type as TensorFlow's `tf.DType` (`tf.as_dtype(dtype)`), for TensorFlow calls such as `tf.cast(x, self.tf_dtype)` | `TFEagerEngine.__init__` |
# | `vocab_size` | V, the embedding's rows | `Engine.__init__` |
# | `_device` | TensorFlow's name of the device, `"/CPU:0"` or `"/GPU:0"`, chosen by `_tf_model.pick_device`; `with tf.device(self._device):` places the variables and operations made inside it there | `TFEagerEngine.__init__` |
# | `names` | the parameters' canonical names in their canonical order (`param_shapes`, Part I (b)); the gradients come back in this order | `TFEagerEngine.__init__` |
# | `variables` | canonical name → `tf.Variable`, the weights, made from the NumPy arrays the constructor is given | `TFEagerEngine.__init__` |
# | `slots`, `t` | Adam's and AMSGrad's moments (Part I (k)) as variables, made from `ptb_lstm.optim.initial_state` (zeros, under the names `m_<parameter>`, `v_<parameter>`, and `vmax_<parameter>` for AMSGrad), and the update count, a Python int; empty and unused with the paper's SGD | `TFEagerEngine.__init__` |
# | `state` | the carried state, (h, c) tensors [B, H] per layer | `reset_state` / `set_state`, then each step |
# | `_state_for(B)` | the state a step of B rows starts from: `state`, or zeros when `state` has another number of rows (a new batch shape starts afresh, such as the 1 × 1 evaluation after training at 20 × 20) | `Engine` |
# | `_to_numpy`, `_from_numpy` | one tensor to a NumPy array (`.numpy()`), and back (`tf.constant`), for `get_state` and `set_state` | `TFEagerEngine` |
# | `last_grad_norm` | the last step's norm before clipping, for the trainer's log | each `train_step` |
#
# (A `_set_lr` appears in Part III's graph engine only: this engine takes the learning rate as a
# Python float at every call and uses it directly.) The constructor, then the carried state's
# methods of the base class, then how weights and state come back as NumPy arrays.
#
# `get_params` and `_to_numpy` return `value.numpy().copy()`. `.numpy()` already returns a new
# array, a copy (a), so in this TensorFlow the `.copy()` is a second copy, which nothing needs:
# it costs one more copy of the weights per call (at a checkpoint or an evaluation, not at a
# step), and it keeps what the contract promises, arrays the caller owns, which no later step of
# the engine changes, independent of how `.numpy()` is written; `np.asarray(tensor)`, for one,
# is a view of the tensor's own memory (a).

# %%
from ptb_lstm.engines import Engine
from ptb_lstm.engines.tf_eager import TFEagerEngine

show_source(TFEagerEngine.__init__)
show_source(_tf_model.pick_device)
show_source(Engine.reset_state)
show_source(Engine.set_state)
show_source(Engine.get_state)
show_source(Engine._state_for)
show_source(TFEagerEngine.get_params)
show_source(TFEagerEngine.set_params)
show_source(TFEagerEngine._to_numpy)
show_source(TFEagerEngine._from_numpy)

# %% [markdown]
# The same attributes on a live engine (the small model of (d), float64, on the CPU), and
# `_state_for` at work when a step of another batch size comes:

# %%
engine = TFEagerEngine(little, little_params, dtype="float64", device="cpu")
print("dtype", repr(engine.dtype), "| tf_dtype", engine.tf_dtype, "| _device", engine._device)
print("names", engine.names)
print("variables['embedding']:", type(engine.variables["embedding"]).__name__, end=" ")
print(engine.variables["embedding"].shape, engine.variables["embedding"].dtype.name)
print("slots (SGD keeps none):", engine.slots)
print("state: layer 0's h is a", type(engine.state[0][0]).__name__, engine.state[0][0].shape)
weights = engine.get_params()
print("get_params():", type(weights["embedding"]).__name__, "equal to what it was given:", end=" ")
print(all((weights[n] == little_params[n]).all() for n in names))
engine.train_step(inputs, targets, learning_rate=1.0)  # B = 3: carries a [3, H] state on
print("after a step of 3 rows, h of layer 0 is nonzero:", bool(np.any(engine.get_state()[0][0])))
state_1 = engine._state_for(1)  # a batch of 1 row: zeros of [1, H]
print("_state_for(1):", state_1[0][0].shape, "all zero:", not np.any(state_1[0][0].numpy()))

# %% [markdown]
# And its `train_step`: the step of (g), with the state taken from `_state_for`, everything placed
# on the engine's device, the norm kept in `last_grad_norm`, and (with `optimizer=adam` or
# `amsgrad`) Part I (k)'s update in place of SGD: `bias_corrections(config, t)` gives that update's
# $(1 - \beta_1^t, 1 - \beta_2^t)$ as Python floats, and `_tf_model.clipped_adam` takes the same
# global norm and scale as (f), then updates the moments in `slots` and the weights. The loss is
# divided by `tf.cast(inputs.shape[0], self.tf_dtype)`, the same number as (g)'s Python int B
# ((g) explains why, and checks it). `float(loss)` and `float(norm)` turn the scalar tensors into
# Python floats for the trainer.

# %%
show_source(TFEagerEngine.train_step)


# %% [markdown]
# The engine against the reference engine in the same three cases as in (g) (no masks and no
# clipping, dropout masks, clipping), with the same limit of $10^{-11}$ in float64:


# %%
def engine_step(config, params, inputs, targets, dtype, masks):
    """The tf-eager engine's train_step from a zero state."""
    engine = TFEagerEngine(config, params, dtype=dtype, device="cpu")
    engine.reset_state(inputs.shape[0])
    loss = engine.train_step(inputs, targets, config.learning_rate, masks)
    return loss, engine.last_grad_norm, engine.get_params(), engine.get_state()


by_engine = all_cases(engine_step)
assert worst_float64(by_engine) < 1e-11

# %% [markdown]
# Over several steps: the toolkit's agreement check (`ptb-lstm agree`, `docs/agreement.md`).
# Same seeded weights, same PTB batches, five training steps each (the learning rate halved
# after the third), then the largest relative errors, against the `numpy` engine, of the per-step
# losses, of every parameter and of the valid perplexity, on the tiny model so that it runs in
# seconds. The reference engine of Part I is in the table too: all three compute one function,
# to rounding. The limits are the toolkit's for agreement over several steps, $10^{-9}$ in
# float64 and $10^{-4}$ in float32 (`docs/agreement.md`): looser than (g)'s one-step $10^{-11}$
# because five steps carry each step's rounding into the next one's weights, and because the
# parameters are compared relative to themselves here.

# %%
from ptb_lstm.agreement import compare

rows = [
    row
    for dtype in ("float64", "float32")
    for row in compare(["numpy-reference", "tf-eager"], PRESETS["tiny"], corpus, dtype, steps=5)
]
print(f"{'engine':<16} {'dtype':<8} {'losses':>9} {'params':>9} {'valid ppl':>10}")
for r in rows:
    print(f"{r.engine:<16} {r.dtype:<8} {r.loss:>9.2e} {r.params:>9.2e} {r.perplexity:>10.2e}")
assert all(max(r.loss, r.params) <= (1e-9 if r.dtype == "float64" else 1e-4) for r in rows)

# %% [markdown]
# ## (i) A short run on PTB, and the full results
#
# The toolkit's trainer with the `tf-eager` engine: `STEPS` steps of the small config, then a
# pass over the valid split. The seconds printed count both, and the engine's set-up. The time per
# step is measured live, on whatever machine runs the notebook and beside whatever else runs
# there, and the first steps also pay TensorFlow's warm-up: it is no benchmark (`make bench` is;
# the full run below is another measure).
# %%
import tempfile

from ptb_lstm.engines import create_engine
from ptb_lstm.metrics import read_metrics
from ptb_lstm.params import init_params
from ptb_lstm.train import train

config = PRESETS["small"]
engine = create_engine("tf-eager", config, init_params(config, corpus.vocab_size))
out = tempfile.mkdtemp(prefix="ptb-lstm-notebook-")
started = time.perf_counter()
result = train(config, corpus, engine, out, max_steps=STEPS, log_every=10)
seconds = time.perf_counter() - started
records = [r for r in read_metrics(f"{out}/metrics.jsonl") if r["event"] == "step"]
print(
    f"{STEPS} steps of the small config with the tf-eager engine, then a pass over the "
    f"valid split, in {seconds:.0f} s; valid perplexity {result.valid.perplexity:.1f}"
)

# %% figure="notebook2-curve"
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot([r["step"] for r in records], [r["perplexity"] for r in records])
ax.set_xlabel("training step")
ax.set_ylabel("running training perplexity")
ax.set_yscale("log")
ax.set_title("small config, TensorFlow eager engine, first steps")
ax.grid(True, which="both", alpha=0.3)
plt.show()
print(f"ms per step: {result.epochs[-1]['ms_per_step']:.1f}")

# %% [markdown]
# ### The full run
#
# Eager execution pays Python's and TensorFlow's dispatch cost for every one of the many small
# operations of a step (Part III counts over 700 operations in the graph of the tiny model, 5
# time steps, constants and set-up included; the small config unrolls 20); on 2 CPU cores the 13
# epochs took about twice as long as the `numpy` engine's. Its results, from
# `docs/results/tf-eager/`, beside the `numpy` engine's. The full runs are float32: over 30,199
# steps of SGD at learning rate 1 the engines' rounding differences grow until the runs are
# different samples of the same training (Part III; `docs/agreement.md`), so their figures differ
# by that run-to-run variation, not by what they compute:


# %%
def full_run(engine):
    """Last epoch's train perplexity, valid and test (training batch shape), test at 1 x 1 and
    the wall time of the 13-epoch run in docs/results/ENGINE, or None when it is not there."""
    folder = REPO / "docs" / "results" / engine
    if not (folder / "metrics.jsonl").is_file():
        return None
    records = [
        json.loads(line)
        for line in (folder / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    last = [r for r in records if r["event"] == "epoch"][-1]
    test = [r for r in records if r["event"] == "test"][-1]
    evaluations = json.loads((folder / "evaluations.json").read_text())
    one = [e for e in evaluations if e["split"] == "test" and e["batch_size"] == 1]
    return {
        "train": last["train_perplexity"],
        "valid": last["valid_perplexity"],
        "test": test["test_perplexity"],
        "test 1x1": one[0]["perplexity"] if one else None,
        "minutes": records[-1]["wall_time"] / 60,
        "epochs": last["epoch"],
    }


PUBLISHED = [  # (source, train, valid, test, test 1x1, wall time)
    ("Zaremba et al. 2015, Table 1", None, 120.7, 114.5, None, ""),
    ("TensorFlow PTB tutorial", 37.99, 121.39, None, 115.91, ""),
    ("the original series, NumPy float64, one CPU", 34.69, 122.08, 116.42, 116.30, "about 10 h"),
    ("the original series, TF 1.12 eager, GPU", 43.98, 119.41, 113.64, None, "9 min"),
    ("the original series, TF 1.12 graph, GPU", 43.80, 120.42, 114.29, None, "7 min"),
]


def results_table(engines, published=True):
    """A Markdown table: the full small-config runs of ``engines``, then (``published``) the
    published ones."""

    def cell(v):
        return "" if v is None else f"{v:.2f}"

    rows = [
        "| run | train | valid | test | test 1x1 | wall time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for engine in engines:
        r = full_run(engine)
        if r is None:
            rows.append(f"| ptb-lstm {engine} | (no run in docs/results/) | | | | |")
            continue
        rows.append(
            f"| **ptb-lstm {engine}**, {r['epochs']} epochs, 2 CPU cores | "
            f"{cell(r['train'])} | {cell(r['valid'])} | {cell(r['test'])} | "
            f"{cell(r['test 1x1'])} | {r['minutes']:.0f} min |"
        )
    for name, *values, wall in PUBLISHED if published else []:
        rows.append(f"| {name} | " + " | ".join(cell(v) for v in values) + f" | {wall} |")
    if published:
        rows.append(
            "\nThe TensorFlow tutorial evaluates its test split one word at a time (batch 1, "
            "1 step), hence its figure in the test 1x1 column."
        )
    display(Markdown("\n".join(rows)))


results_table(["tf-eager", "numpy"])

# %% [markdown]
# ## (j) Exercises
#
# Three exercises, each with a cell that checks your answer: it prints `not yet done` while the
# answer is the stub given, `ok` for a right answer and `WRONG` (with what differs) for a wrong
# one. Write yours in place of the stub and run the check cell. The answers follow the
# exercises, after a line; each is run through its check, and so is a wrong answer, to show the
# check refusing it.
#
# **Exercise 1: the global norm with an embedding gradient.** Write
# `my_sparse_global_norm(gradients)` that takes a list of gradients, dense tensors and
# `tf.IndexedSlices` with repeated indices mixed, and returns the global norm of the dense
# gradient they stand for, as a float (section (e)). `check_sparse_global_norm` tries it on
# gradients whose slices repeat rows.


# %%
def check_sparse_global_norm(my_sparse_global_norm):
    """my_sparse_global_norm(list of tensors and IndexedSlices) -> float, against the norm of the
    dense arrays, on three draws of gradients with repeated embedding rows."""
    rng = np.random.default_rng(7)
    verdicts = []
    for draw in range(3):
        rows = rng.integers(0, 6, 10)  # ten positions over six rows: repeats
        values = rng.standard_normal((10, 4))
        dense_embedding = np.zeros((6, 4))
        np.add.at(dense_embedding, rows, values)
        kernel = rng.standard_normal((4, 8))
        gradients = [
            tf.IndexedSlices(tf.constant(values), tf.constant(rows), tf.constant([6, 4])),
            tf.constant(kernel),
        ]
        expected = np.sqrt((dense_embedding**2).sum() + (kernel**2).sum())
        try:
            got = my_sparse_global_norm(gradients)
        except NotImplementedError:
            print("not yet done: write my_sparse_global_norm")
            return
        ok = got is not None and abs(float(got) - expected) <= 1e-12 * expected
        verdicts.append(ok)
        print(f"draw {draw}: expected {expected:.12f}, got {float(got):.12f}  ", end="")
        print("ok" if ok else "WRONG")
    print("all ok" if all(verdicts) else "WRONG")


def my_sparse_global_norm(gradients):
    raise NotImplementedError  # your answer here


check_sparse_global_norm(my_sparse_global_norm)

# %% [markdown]
# **Exercise 2: when does `tf.function` trace?** A fresh `tf.function` is called eight times, as
# listed in the cell. For each call, say whether it traces (`True`) or reuses a trace (`False`):
# set `my_traces` to a list of eight booleans (section (c)). `check_traces` makes the calls and
# counts.


# %%
def check_traces(my_traces):
    """my_traces: eight booleans, whether each call below traces the function afresh."""
    traced = []

    @tf.function
    def affine(x, a, b):
        traced.append(1)
        return a * x + b

    counter = tf.Variable(1.0)
    calls = [
        lambda: affine(tf.constant([1.0, 2.0]), 2.0, 1.0),  # 1
        lambda: affine(tf.constant([3.0, 4.0]), 2.0, 1.0),  # 2: new values, same shape
        lambda: affine(tf.constant([3.0, 4.0]), 2.0, 5.0),  # 3: b is a new Python float
        lambda: affine(tf.constant([3.0, 4.0, 5.0]), 2.0, 5.0),  # 4: a new shape
        lambda: affine(tf.constant([[3.0, 4.0]]), 2.0, 5.0),  # 5: [1, 2], a new shape again
        lambda: affine(tf.constant([3.0, 4.0]), counter, 5.0),  # 6: a is a variable
        lambda: affine(tf.constant([3.0, 4.0]), counter, 5.0),  # 7: the variable, now 7.0
        lambda: affine(tf.constant([1.0, 2.0], tf.float64), 2.0, 1.0),  # 8: float64
    ]
    actual = []
    quiet = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # TensorFlow warns of frequent retracing: wanted here
    for number, call in enumerate(calls, start=1):
        if number == 7:
            counter.assign(7.0)  # a new value in the same variable
        before = len(traced)
        call()
        actual.append(len(traced) > before)
    tf.get_logger().setLevel(quiet)
    if my_traces is None:
        print("not yet done: set my_traces to a list of eight booleans")
        return
    wrong = [k + 1 for k, (a, b) in enumerate(zip(actual, my_traces, strict=True)) if a != b]
    print("all ok" if not wrong else f"WRONG for calls {wrong}")


my_traces = None  # your answer here: [True, ...]
check_traces(my_traces)

# %% [markdown]
# **Exercise 3: the whole training step.** Write `my_tf_step(variables, state, inputs, targets,
# learning_rate, config, masks)` that does one training step and returns `(loss, final_state)`:
#
# * `variables`: canonical name → `tf.Variable` (float64), to update in place with clipped SGD;
# * `state`: the carried state, a list of one `(h, c)` pair of tensors [B, H] per layer;
# * `inputs`, `targets`: NumPy ids [B, T]; `learning_rate`: a Python float; `config`: the
#   `Config` (`config.max_grad_norm`, `config.num_layers`, ...); `masks`: Part I's L + 1
#   dropout masks, NumPy arrays [T, B, H] (float64), or None;
# * return the loss before the update (summed over time, averaged over the batch) as a float, and
#   the final state of the forward pass, a list of `(h, c)` pairs.
#
# Section (g)'s three details apply: the masks must become tensors of the variables' dtype; the
# ids go in as they are; B may be the Python int `inputs.shape[0]`.
#
# You may use `_tf_model.forward` and `_tf_model.summed_nll` (section (d)), or write the forward
# pass from TensorFlow operations yourself. `check_tf_step` runs yours beside Part I's
# `ReferenceEngine.train_step` for four steps of the tiny config (float64, dropout 0.5, the first
# PTB batches), passing your final state into your next step, with learning rates 1, 0.5, 0.5 and
# 0.25 and `max_grad_norm` lowered to 0.5 for the first two, so that clipping acts, as in Part I
# (g); with dropout, every step has its masks. It compares the losses (relative error), the
# weights (relative to the update) and the state (relative error), as defined in (d); each must
# be within $10^{-9}$. That is looser than (g)'s $10^{-11}$ on purpose: your forward pass may
# order its operations otherwise than `_tf_model.forward` (a projection per time step, your own
# log-softmax), which changes the rounding, and four steps carry each step's rounding into the
# next one's weights and state. `tf_train_step` stays near $10^{-14}$; a real mistake (the
# answers show one) gives $10^{-4}$ or more.


# %%
def check_tf_step(my_tf_step):
    """my_tf_step(variables, state, inputs, targets, learning_rate, config, masks) ->
    (loss, final state), against ReferenceEngine.train_step over four steps (float64)."""
    from ptb_lstm.dropout import step_masks

    config = PRESETS["tiny"].replace(dropout=0.5)
    schedule = [(1.0, 0.5), (0.5, 0.5), (0.5, 5.0), (0.25, 5.0)]  # (learning rate, clip)
    params = init_params(config, corpus.vocab_size, np.float64)
    engine = ReferenceEngine(config, params, dtype="float64")
    engine.reset_state(config.batch_size)
    variables = {n: tf.Variable(v, name=n) for n, v in params.items()}
    zeros = tf.zeros([config.batch_size, config.hidden_size], tf.float64)
    state = [(zeros, zeros)] * config.num_layers
    stream = batches(corpus.train, config.batch_size, config.num_steps)
    wrong = 0
    for step, ((inputs, targets), (learning_rate, clip)) in enumerate(
        zip(stream, schedule, strict=False)
    ):
        engine.config = config.replace(max_grad_norm=clip)
        masks = step_masks(config, step, dtype=np.float64)
        before = engine.get_params()
        try:
            loss, state = my_tf_step(
                variables, state, inputs, targets, learning_rate, engine.config, masks
            )
        except NotImplementedError:
            print("not yet done: write my_tf_step")
            return
        expected = engine.train_step(inputs, targets, learning_rate, masks)
        weights = max(
            float(np.abs(variables[n].numpy() - engine.params[n]).max())
            / float(np.abs(engine.params[n] - before[n]).max())
            for n in params
        )
        states = max(
            tf_relative_error(a, np.asarray(b))
            for pair, other in zip(engine.state, state, strict=True)
            for a, b in zip(pair, other, strict=True)
        )
        loss_error = abs(float(loss) - expected) / abs(expected)
        ok = max(loss_error, weights, states) <= 1e-9
        wrong += not ok
        print(
            f"step {step}: learning rate {learning_rate}, norm {engine.last_grad_norm:.3f} "
            f"({'clipped to' if engine.last_grad_norm > clip else 'not clipped, max'} {clip}); "
            f"errors: loss {loss_error:.1e}, weights {weights:.1e}, state {states:.1e}  "
            f"{'ok' if ok else 'WRONG'}"
        )
    print("all steps ok" if not wrong else f"{wrong} of {len(schedule)} steps WRONG")


def my_tf_step(variables, state, inputs, targets, learning_rate, config, masks):
    raise NotImplementedError  # your answer here


check_tf_step(my_tf_step)

# %% [markdown]
# ---
#
# **Stop here and write yours first: the answers follow.**
#
# **Exercise 1.** Merge the repeated rows first, then take the norm: with
# `_tf_model.sum_duplicate_rows`, or by making every gradient dense. A norm of the raw slices
# squares each position's row apart and comes out too small, and the check says so:

# %%
check_sparse_global_norm(
    lambda gradients: float(
        tf.linalg.global_norm([_tf_model.sum_duplicate_rows(g) for g in gradients])
    )
)
print("made dense:")
check_sparse_global_norm(
    lambda gradients: float(tf.linalg.global_norm([tf.convert_to_tensor(g) for g in gradients]))
)
print("and the raw slices:")
check_sparse_global_norm(lambda gradients: float(tf.linalg.global_norm(gradients)))

# %% [markdown]
# **Exercise 2.** Calls 1, 3, 4, 5, 6 and 8 trace: the first call; a new Python value for `b`; two
# new shapes; a variable in place of a Python float (a new kind of argument); a new dtype. Calls
# 2 and 7 reuse a trace: new values in a tensor of a known shape, and a new value in the same
# variable (read at every call, never frozen). The check on that answer, and on the answer that
# thinks every call with a new number traces:

# %%
check_traces([True, False, True, True, True, True, False, True])
print("and:")
check_traces([True, True, True, True, True, True, True, True])

# %% [markdown]
# **Exercise 3.** Section (g)'s `tf_train_step` is an answer; it returns the norm as well, which
# the check does not ask for. Then a step that takes the norm of the raw slices (the mistake of
# exercise 1): it clips to the wrong length in the first two steps, where clipping acts, and the
# later steps, unclipped, start from the wrong weights it left. The mistake shows only where
# clipping acts: the check lowers `max_grad_norm` for that.

# %%
check_tf_step(lambda *args: tf_train_step(*args)[::2])
print("and a step whose norm counts repeated embedding rows apart:")


def raw_norm_step(variables, state, inputs, targets, learning_rate, config, masks):
    tf_dtype = variables["embedding"].dtype
    masks = None if masks is None else [tf.constant(m, tf_dtype) for m in masks]
    names = list(variables)
    with tf.GradientTape() as tape:
        logits, final_state = _tf_model.forward(
            variables, tf.constant(inputs), state, config, masks
        )
        loss = _tf_model.summed_nll(logits, tf.constant(targets)) / inputs.shape[0]
    gradients = tape.gradient(loss, [variables[n] for n in names])
    norm = tf.linalg.global_norm(gradients)  # the raw slices: too small
    scale = learning_rate * config.max_grad_norm / max(float(norm), config.max_grad_norm)
    for name, gradient in zip(names, gradients, strict=True):
        if isinstance(gradient, tf.IndexedSlices):
            variables[name].scatter_sub(tf.IndexedSlices(scale * gradient.values, gradient.indices))
        else:
            variables[name].assign_sub(scale * gradient)
    return float(loss), final_state


check_tf_step(raw_norm_step)

# %% [markdown]
# Part III describes the same computation once, as a graph, builds it, and runs it in a session.
