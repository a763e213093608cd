# %% [markdown]
# # Part III — the same model as a TensorFlow graph, built first and then run
#
# In **graph execution** a program first *describes* the computation and only then runs it. Each
# TensorFlow call adds an operation (a node) to a dataflow graph, whose edges are the tensors
# flowing between operations; nothing is computed while the graph is built. The graph is then run
# as many times as needed, with new inputs each time, without Python in between. This is how
# TensorFlow 1 worked throughout, and how the original series' Part III trained the model:
# define the graph, then create a session and run parts of it.
#
# TensorFlow 2 has two ways to build and run a graph, both shown here:
#
# * **`tf.function`** traces a Python function into a graph (a `tf.Graph`, held in a
#   `ConcreteFunction`); calling it runs the graph. This is TensorFlow 2's own way.
# * **`tf.compat.v1`**, TensorFlow 1's API kept in TensorFlow 2: operations are added to a
#   `tf.Graph` inside `with graph.as_default():`, inputs are *placeholders*, and a `Session`
#   runs the part of the graph needed for what it is asked to *fetch*, with values *fed* into
#   the placeholders. The toolkit's `tf-graph` engine (`ptb_lstm/engines/tf_graph.py`) builds
#   its graph this way, once, and runs it step by step. Every part of the graph is built by
#   code shown here: the model's operations by the toolkit's functions `_tf_model.forward`,
#   `summed_nll` and `clipped_sgd`, whose code (d) shows and explains line by line; the
#   training step around them by this notebook's own `build_train_graph` in (e); the engine's
#   additions in (f); and the inputs, the state and what each step runs are named.
#
# Graph building is local: only code inside a `with graph.as_default():` block (or inside a
# function being traced) adds to a graph, and eager execution stays on for the rest of the
# process. This part stands on its own beside Part I: it repeats what it needs of TensorFlow
# (tensors, variables, dtypes, feeds, gradients as `IndexedSlices`) and of Part I (the
# notation $e_t = E[w_t]$, $x^{(0)}_t = m^{(0)}_t \odot e_t$, ...; the dropout masks, where each
# one goes and how they are drawn), shows the code of every operation the model adds, and by
# the end of (e) you have built the graph of a training step with dropout masks, run it from a
# zero state and from a carried one, and checked it against Part I's reference engine. The
# exercises at the end count the operations of that graph and run it over several steps in one
# session.
#
# Contents: (a) a toy graph, built and run in a session · (b) the same with `tf.function` ·
# (c) control dependencies · (d) the model's functions: tensors, variables, dtypes, time-major,
# gradients, clipping · (e) the graph of a training step with dropout masks, built by hand,
# then run, against Part I's, from a zero state and a carried one, and in Part I's pure form ·
# (f) the engine, attribute by attribute · (g) the engine's graph,
# counted and drawn · (h) a short run and the full results · (i) exercises.

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
# ## (a) A toy graph, built, then run in a session
#
# $y = w x + 1$, its derivative, and an update, as a graph. Four kinds of things go into it:
#
# * a **placeholder** (`v1.placeholder(dtype, shape)`) is an input whose value is fed at every
#   run; `None` in its shape is "any size";
# * a **variable** (`tf.Variable`) holds state that lives in the session from one run to the
#   next: the weights. It needs an initial value, given by running its initializer
#   (`v1.global_variables_initializer()` groups them all); `w.assign_sub(x)` is an operation
#   that, when run, replaces $w$ by $w - x$;
# * every other call (`w * x`, `tf.add`, `tf.reduce_sum`) adds an operation whose output is a
#   **symbolic tensor**: a name, a shape and a dtype, and no value;
# * `v1.gradients(loss, [w])` adds the operations of the backward pass to the graph and returns
#   the symbolic tensors of $\partial\,\text{loss}/\partial w$ (the graph's counterpart of a tape).
#
# Building prints no numbers — `y` is a symbolic tensor (`y:0`, output 0 of the operation `y`);
# the session computes. In the list of operations, a variable is a handle (`w`) with its
# initializer and assignment (`w/Initializer/...`, `w/Assign`); every use of it adds a
# `ReadVariableOp`; the constants 1.0 and 0.1 are nodes too (`y/y`, `mul_1/x`); `mul_1` and
# `AssignSubVariableOp` are the update. `session.run(fetches, feed_dict)` computes the fetched
# tensors (or runs the fetched operations) from the fed values and returns NumPy values, in the
# structure of `fetches`: one tensor gives one array (a scalar one gives a NumPy scalar), and a
# list, a tuple or a dict of fetches, nested to any depth, comes back as the same list, tuple or
# dict with every tensor replaced by its value (a fetched operation by `None`). (e) fetches the
# final state as a list of `(h, c)` tuples and gets a list of `(h, c)` tuples of arrays.
#
# **The values of the variables live in the session**, not in the graph: a second session on the
# same graph starts with uninitialised variables, and closing a session (the end of its `with`
# block) discards their values. The last lines of the cell show both.

# %%
v1 = tf.compat.v1
toy = tf.Graph()
with toy.as_default():  # calls below add nodes to `toy`
    x = v1.placeholder(tf.float32, [None], name="x")  # an input, fed at run time
    w = tf.Variable(3.0, name="w")  # state kept by the session
    y = tf.add(w * x, 1.0, name="y")  # y = w x + 1: a node, not a value
    loss = tf.reduce_sum(y, name="loss")
    (dw,) = v1.gradients(loss, [w])  # more nodes: d loss / d w
    step = w.assign_sub(0.1 * dw)  # an update node
    init = v1.global_variables_initializer()
print("y is", y)
print(
    "the graph's operations:",
    [op.name for op in toy.get_operations() if "gradients" not in op.name],
)
with v1.Session(graph=toy) as session:
    session.run(init)  # give w its initial value
    print("fetch y, feeding x = [1, 2]:", session.run(y, feed_dict={x: [1.0, 2.0]}))
    print("fetch dw (= sum of x):", session.run(dw, feed_dict={x: [1.0, 2.0]}))
    session.run(step, feed_dict={x: [1.0, 2.0]})  # runs the update and what it needs
    print("w after one step:", session.run(w))
    nested = session.run({"y": y, "pairs": [(w, dw), (w, loss)]}, {x: [1.0, 2.0]})
    print("nested fetches come back in their structure:", nested)
with v1.Session(graph=toy) as session:  # a new session: the first one's w is gone
    try:
        session.run(w)
    except tf.errors.FailedPreconditionError as error:
        print("w in a second session, not initialised:", type(error).__name__)

# %% [markdown]
# ## (b) The same with `tf.function`
#
# TensorFlow 2 writes the same graph as an ordinary Python function. `tf.function` runs the
# function once symbolically (a **trace**): inside it every operation adds a node to a new
# graph instead of computing, and `tf.GradientTape` adds the backward pass to that graph as
# more operations. The inputs of the graph are the function's tensor arguments (placeholders, as
# above), the variables it uses are captured by handle, and what it returns is what a call
# fetches. `get_concrete_function(tf.TensorSpec(shape, dtype))` traces it for one kind of input
# and returns the `ConcreteFunction`: its `.graph` is the `tf.Graph` built, and calling it runs
# that graph. A later call whose tensor arguments have the same dtype and shape runs the same
# graph without Python; a new shape, or a new value of a Python argument, traces a new graph.
#
# Two differences from a session graph. Variables are created outside the function (they
# outlive its calls) and hold their values in the process, with no initializer to run. And
# inside a traced function the stateful operations (assignments, reads of a variable) run in the
# order the Python code wrote them: `tf.function` adds the control dependencies of (c) itself.

# %%
w2 = tf.Variable(3.0, name="w")  # an ordinary (eager) variable, captured by the function


@tf.function
def toy_step(x):
    with tf.GradientTape() as tape:  # inside a trace: the backward pass becomes operations too
        loss = tf.reduce_sum(w2 * x + 1.0)
    w2.assign_sub(0.1 * tape.gradient(loss, w2))  # runs after the read above: program order
    return loss


concrete = toy_step.get_concrete_function(tf.TensorSpec([None], tf.float32, name="x"))
print("a", type(concrete).__name__, "whose graph is a", type(concrete.graph).__name__, end=", ")
print("a subclass of tf.Graph:", isinstance(concrete.graph, tf.Graph))
print("its operations:", [op.type for op in concrete.graph.get_operations()])
print("the inputs:", [t.name for t in concrete.inputs], "| the outputs:", concrete.outputs)
print("run it on [1, 2]: loss", float(concrete(tf.constant([1.0, 2.0]))), end=", ")
print("w after one step", float(w2))

# %% [markdown]
# The engine could be written either way: a `tf.function` of the training step, traced once per
# batch shape, builds the same graph as the engine's `v1` code. The engine uses the session API
# because that is how the original series' Part III built its model, and because every part of
# its graph is then a named object in plain sight — the placeholders it feeds, the variables that carry the state, the operation it
# fetches to run a step — where `tf.function` infers them from the Python code by tracing rules.
#
# ## (c) Control dependencies
#
# A session runs only what a fetch needs, in any order the dependencies allow. An operation whose
# output no fetched operation needs never runs: the SGD updates of a training step, for example.
# `tf.control_dependencies` makes one operation wait for others it does not read, so that
# fetching it runs them too. (An order that a data edge already fixes needs no such edge: a value
# computed from a read comes after the read.)

# %%
with toy.as_default():
    counter = tf.Variable(0, name="counter")
    with tf.control_dependencies([y]):  # after y, although it does not read y
        count = counter.assign_add(1)
with v1.Session(graph=toy) as session:
    session.run(v1.global_variables_initializer())
    for _ in range(3):
        session.run(count, {x: [1.0]})  # needs a feed for x: it runs y first
    print("counter after fetching count 3 times:", session.run(counter))
    for _ in range(2):
        session.run(y, {x: [1.0]})  # y alone does not need count
    print("and after fetching y twice more:", session.run(counter))


# %% [markdown]
# ## (d) The model's functions: tensors, variables, dtypes, time-major, gradients, clipping
#
# The TensorFlow engines write the model once, in `ptb_lstm/engines/_tf_model.py`, as functions of
# TensorFlow operations. Called inside a `with graph.as_default():` block they add operations to
# that graph; they are the same functions the eager engine of Part II runs. What they rest on:
#
# * **Tensors and variables.** Operations take and return tensors (immutable; in a graph,
#   symbolic). The weights are `tf.Variable`s, read as tensors by the operations that use them
#   and changed only by assignment operations: `assign`, `assign_sub` (that is
#   $v \leftarrow v - x$) and `scatter_sub(tf.IndexedSlices(values, indices))`, which subtracts
#   row `k` of `values` from row `indices[k]` of the variable and leaves the other rows alone.
# * **Dtypes.** A Python float becomes a **float32** tensor (`tf.constant(0.1)`), and TensorFlow
#   never converts a dtype silently inside the graph: float64 times float32 is an error. A Python
#   number written directly in an operation with a tensor (`2.0 * x`) takes that tensor's dtype.
#   So in a float64 model every constant made as a tensor is given its dtype,
#   `tf.constant(5.0, tf.float64)`; `tf.cast(0.01, tf.float64)` would make a float32 0.01 first
#   and widen it, 2e-10 off (`_scalar` below exists for that); an integer such as the batch
#   size is exact in every float dtype, so the engine's `tf.cast(batch_size, dtype)` is safe.
#   **Feeds are the exception**:
#   `session.run` makes every fed value a NumPy array of its placeholder's dtype
#   (`np.asarray(value, dtype)`) without a word, so float64 numbers fed to a float32 placeholder
#   are rounded and 1.9 fed to an int32 placeholder becomes 1 (the small graph at the end of this section runs both).
#   The code of (e) therefore converts what it feeds itself, by one rule: every float (weights,
#   state, masks, learning rate) to the model's dtype, the ids to int32; and it draws the
#   dropout masks in the model's dtype, so that nothing is rounded on the way in unseen.
# * **Time-major.** A batch arrives as ids `inputs` [B, T] (row r is one stream of text, Part I
#   (a)). `forward` swaps its two axes with `tf.transpose(inputs)`, for a 2-D tensor the same as
#   `tf.transpose(inputs, perm=[1, 0])` (axis k of the result is axis `perm[k]` of the input),
#   into `ids` [T, B]. Everything after it is [T, B, ...]: the embedded input `x`
#   [T, B, H], whose `x[t]` is the whole batch's input at time t, [B, H]; its projection
#   `projected` [T, B, 4H], whose `projected[t]` is $x_t W + b$ for the whole batch at time t,
#   the slice the loop over time adds $h_{t-1} U$ to; a layer's outputs `tf.stack(outputs)`
#   [T, B, H]; and the logits, one [T·B, V] matrix whose row $t \cdot B + r$ is time t of stream
#   r. `summed_nll` therefore transposes the targets [B, T] the same way before flattening them.
# * **The loop over time runs while the graph is built.** `for t in range(steps)` is Python: in
#   a graph it leaves T copies of the step's operations (the graph is *unrolled*), so a graph
#   serves one batch shape.
#
# `forward(params, inputs, state, config, masks)`: `params` maps the canonical names of Part I
# (b) to variables; `state` is a list of one `(h, c)` pair [B, H] per layer; `masks` is Part I's
# list of L + 1 dropout masks [T, B, H], or `None` (no dropout). It returns the logits [T·B, V]
# and the final state. Its code, line by line, in Part I's notation (layer l reads
# $x^{(l)}_t$; $e_t = E[w_t]$ is the embedding, $x^{(0)}_t = m^{(0)}_t \odot e_t$ its masked
# value, $x^{(l+1)}_t = m^{(l+1)}_t \odot h^{(l)}_t$; H is `hidden`, T is `steps`):
#
# | Part I | reference engine (NumPy) | `_tf_model.forward` |
# |---|---|---|
# | $w_t$, time-major | `ids = inputs.T` | `ids = tf.transpose(inputs)`, [B, T] → [T, B] |
# | $e_t = E[w_t]$ | `x = p["embedding"][ids]` | `x = tf.nn.embedding_lookup(params["embedding"], ids)`, [T, B, H] |
# | $x^{(0)}_t = m^{(0)}_t \odot e_t$ | `x = x * masks[0]` | first pass of `for layer in range(config.num_layers):` opens with `if masks is not None: x = x * masks[layer]`, so `masks[0]` |
# | $x_t W + b$, every t | `x[t] @ W + ... + b` inside the loop | `projected = tf.reshape(tf.matmul(tf.reshape(x, [-1, hidden]), kernel) + bias, [steps, -1, 4 * hidden])`: [T·B, H] @ [H, 4H], back to [T, B, 4H] |
# | $(h_{-1}, c_{-1})$ | `h[0], c[0] = state[layer]` | `h, c = state[layer]` |
# | $z_t = x_t W + h_{t-1} U + b$ | `z = x[t] @ W + h[t] @ U + b` | `z = projected[t] + tf.matmul(h, recurrent)`, [B, 4H] |
# | i, f, g, o | `sigmoid(z[:, 0 * H : 1 * H])`, ... | `z_i, z_f, z_g, z_o = tf.split(z, 4, axis=1)` |
# | $c_t = f_t \odot c_{t-1} + i_t \odot g_t$ | `c[t + 1] = f[t] * c[t] + i[t] * g[t]` | `c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_g)` |
# | $h_t = o_t \odot \tanh c_t$ | `h[t + 1] = o[t] * np.tanh(c[t + 1])` | `h = tf.sigmoid(z_o) * tf.tanh(c)`, then `outputs.append(h)` |
# | $h^{(l)}_t$, every t | `x = h[1:]` | `final_state.append((h, c))`, `x = tf.stack(outputs)`, [T, B, H] |
# | $x^{(l+1)}_t = m^{(l+1)}_t \odot h^{(l)}_t$, $l < L - 1$ | `x = x * masks[layer + 1]` | the next pass's `x = x * masks[layer]`, so `masks[l + 1]` |
# | $x^{(L)}_t = m^{(L)}_t \odot h^{(L-1)}_t$ | `x = x * masks[layer + 1]`, last layer | after the loop, `if masks is not None: x = x * masks[config.num_layers]` |
# | $y_t = (m^{(L)}_t \odot h^{(L-1)}_t) W_s + b_s$ | `x @ p["softmax_kernel"] + p["softmax_bias"]`, [T, B, V] | `tf.matmul(tf.reshape(x, [-1, hidden]), params["softmax_kernel"]) + params["softmax_bias"]`, [T·B, V] |
# | $\sum_t -\log p_t[w_{t+1}]$ | `log_softmax`, `nll` | `summed_nll`: `labels = tf.reshape(tf.transpose(targets), [-1])`, then `tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))` |
#
# So `masks[0]` multiplies the embedded input, `masks[l + 1]` the output of layer l, and
# `masks[L]` the top output just before the softmax; the recurrent $h_{t-1}$ is never masked.
# `tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)` is $-\log
# \mathrm{softmax}(y)[\text{label}]$ of every row, computed stably as Part I (d) does. The
# toolkit's source of both functions, for comparison with the table:

# %%
from ptb_lstm.engines import _tf_model

show_source(_tf_model.forward)
show_source(_tf_model.summed_nll)

# %% [markdown]
# **Gradients.** `v1.gradients(loss, variables)` adds the backward pass — Part I (e), derived
# by TensorFlow from the operations of the forward pass — and returns one symbolic gradient per
# variable, in the order asked. The carried-in state is an input of the graph, not a variable
# asked for, so no gradient flows into the previous batch: truncated BPTT, as in Part I.
#
# **The embedding's gradient** is a `tf.IndexedSlices`, not a dense [V, H] tensor: the lookup
# read only the rows of the batch's words. `tf.IndexedSlices(values, indices, dense_shape)`
# (in that order) holds `.values` [N, H], the gradient arriving at each of N positions,
# `.indices` [N], the row each position read (repeats included), and `.dense_shape`, the shape
# [V, H] of the dense tensor it stands for. With ids [T, B], as in `forward`, the positions come
# flattened in time-major order: `indices` is `ids` reshaped to [T·B] and `values` is [T·B, H].
# Made dense, repeated rows add up, as Part I's `np.add.at` does. The global norm must be taken
# **after** the repeated rows are summed: $\lVert[1,2]\rVert^2 + \lVert[5,6]\rVert^2$ is not
# $\lVert[6,8]\rVert^2$, and `tf.linalg.global_norm` squares an `IndexedSlices`' values as they
# are. `sum_duplicate_rows` merges them in three calls:
#
# ```python
# rows, position = tf.unique(gradient.indices)  # 1-D input only: rows [K] distinct, position [N]
# values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])  # [K, H]
# merged = tf.IndexedSlices(values, rows, gradient.dense_shape)
# ```
#
# `tf.unique(x)` takes a 1-D tensor (a 2-D one is an error) and returns the pair `(y, idx)`:
# `y` the distinct entries in order of first appearance, and for each entry of `x` its index in
# `y`, so that `x == tf.gather(y, idx)`. `tf.math.unsorted_segment_sum(data, segment_ids,
# num_segments)` adds up the rows of `data` that share a segment id into an output of
# `num_segments` rows; the number of segments is an argument, not inferred, and here it is the
# number of distinct rows, `tf.shape(rows)[0]`, known only when the graph runs.
#
# Would `scatter_sub` itself mind the repeats? No: it subtracts every listed row, and a row
# listed twice gets both subtractions (the cell below runs it). The merge is there for the norm
# only; after it the scatter gets each row once, and the update is the same.
#
# **Clipping and SGD.** `clipped_sgd(variables, gradients, learning_rate, max_grad_norm)` is Part
# I (g)'s update: the global norm $n = \sqrt{\sum_k \lVert \delta\theta_k \rVert^2}$ of all the
# gradients (the embedding's merged), the scale
# $\text{max\_grad\_norm} / \max(n, \text{max\_grad\_norm})$, and
# $\theta \leftarrow \theta - \eta \cdot \text{scale} \cdot \delta\theta$ with `assign_sub`, or
# `scatter_sub` on the embedding's rows only (a word not in the batch does not move). In basic
# operations, with `grads` the gradients (an `IndexedSlices` by its `.values`):
#
# ```python
# norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads]))  # tf.square: x * x
# scale = max_norm / tf.maximum(norm, max_norm)  # tf.maximum: element-wise max; here scalars
# ```
#
# `tf.add_n` adds a list of tensors of one shape. `clipped_sgd` calls
# `tf.linalg.global_norm(gradients)` on the gradients **after** `sum_duplicate_rows` has merged
# the embedding's rows, which computes the same $n$ (it sums the halved squares,
# `tf.nn.l2_loss`, and doubles: the cell below compares the two), and writes the scale with
# `tf.maximum` as above. Its docstring's "as tf.clip_by_global_norm" means exactly this: the
# scale is `tf.clip_by_global_norm`'s formula, applied to the merged gradients; handed the raw
# `IndexedSlices`, `tf.clip_by_global_norm` would take the norm of the unmerged values, the
# wrong one shown below. `max_norm` is `tf.constant(max_grad_norm, norm.dtype)`. It returns
# `(updates, norm)`. In a graph the updates are **operations that have not run**: nothing
# fetched reads them, so a session runs them only if they are fetched, or grouped into one
# operation (`tf.group`) that is fetched, or made a control dependency of something fetched (c).
# (`learning_rate` may be a Python float or a tensor; `_scalar` turns either into the norm's
# dtype.) A small graph shows the `IndexedSlices` of ids [T, B] = [2, 3], the merge, the norms,
# a scatter with a repeated row, and what a feed does to dtypes:

# %%
show_source(_tf_model.sum_duplicate_rows)
show_source(_tf_model._scalar)
show_source(_tf_model.clipped_sgd)
demo = tf.Graph()
with demo.as_default():
    E = tf.Variable(tf.zeros([6, 2], tf.float64), name="E")  # a 6-word embedding of width 2
    demo_ids = v1.placeholder(tf.int32, [2, 3])  # [T, B]
    upstream = tf.reshape(tf.range(1.0, 13.0, dtype=tf.float64), [2, 3, 2])  # some dL/dx
    demo_loss = tf.reduce_sum(tf.nn.embedding_lookup(E, demo_ids) * upstream)
    (grad,) = v1.gradients(demo_loss, [E])
    merged = _tf_model.sum_duplicate_rows(grad)
    norms = tf.linalg.global_norm([grad]), tf.linalg.global_norm([merged])
    by_ops = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(merged.values))]))  # the same norm
    repeated = E.scatter_sub(tf.IndexedSlices(tf.ones([2, 2], tf.float64), tf.constant([3, 3])))
    narrow = v1.placeholder(tf.float32, [2])  # to see what a feed does to dtypes
    demo_init = v1.global_variables_initializer()
print("the gradient of E is an", type(grad).__name__, "of symbolic tensors:")
print("  values", grad.values, "\n  indices", grad.indices, "\n  dense_shape", grad.dense_shape)
with v1.Session(graph=demo) as session:
    session.run(demo_init)
    fed = [[1, 4, 1], [0, 1, 4]]
    raw, merged_slices, (raw_norm, merged_norm), ops_norm = session.run(
        [grad, merged, norms, by_ops], {demo_ids: fed}
    )
    print("fed ids [T, B] =", fed)
    print("indices", raw.indices, "(the ids flattened); values", raw.values.shape, end=" ")
    print(raw.values.tolist(), "; dense_shape", raw.dense_shape)
    print("merged: indices", merged_slices.indices, "values", merged_slices.values.tolist())
    print(f"global norm of the raw slices {raw_norm:.4f}, of the merged ones {merged_norm:.4f};")
    print(f"  by tf.sqrt(tf.add_n(...tf.square...)) {ops_norm:.4f}")
    session.run(repeated)
    print("scatter_sub of ones at rows [3, 3]: row 3 of E is now", session.run(E)[3].tolist())
    print(
        "float64 0.1 fed to a float32 placeholder:", repr(session.run(narrow, {narrow: [0.1] * 2}))
    )
    print(
        "ids [[1.9, ...]] fed to the int32 placeholder:",
        session.run(demo_ids, {demo_ids: [[1.9] * 3] * 2})[0],
    )

# %% [markdown]
# ## (e) The graph of a training step, built by hand, then run
#
# Everything together, first built, then run: one function builds the graph of a training step
# for one batch shape, and a session runs it on a PTB batch. What is fed and what is fetched:
#
# * **fed** at every run: the ids `inputs` and `targets` [B, T] (int32, the dtype `batches`
#   yields them in, the cell below prints it), the carried state (one
#   `h` and one `c` placeholder [B, H] per layer), the learning rate (a scalar placeholder,
#   so that the schedule can change it without building anew: a Python float would be frozen
#   into the graph as a constant), and, for a config with dropout, the step's **dropout masks**:
#   L + 1 placeholders [T, B, H] (`mask_0`, ..., `mask_L`) in the model's dtype, handed to
#   `forward` as its `masks`, so that (d) puts `masks[0]` on the embedded input, `masks[l + 1]`
#   on layer l's output and `masks[L]` on the top output before the softmax. They are fed, not
#   built in, because every step has new ones; a config without dropout builds none;
# * **variables**: the weights, created as zeros and loaded once from the NumPy arrays through
#   placeholders and an assign operation (`load`), so that the graph does not hold 4.65 million
#   numbers as constants;
# * **fetched** at every run: the loss, the norm, the final state (fed back as the next step's
#   state), and `train`, the operation grouping the updates, which makes the run apply them.
#   Every variable is read before it is updated within one run, and no control dependency (c)
#   is needed for it: the order follows from data edges alone. Every update's input is
#   `scale * gradient`, the scale needs the global norm, the norm needs every gradient, and the
#   gradients together need the forward pass and so every read of every variable. No update can
#   start before the last read has run (with clipping acting or not: the scale is computed
#   either way), so the fetched loss and final state are those of the weights before the
#   update, as in Part I.
#
# Every array fed goes through `run_train_graph`'s one rule (d): floats (weights, state, masks,
# learning rate) are made arrays of the model's dtype, `np.asarray(v, dtype)`, and ids arrays of
# int32; a feed would convert them silently otherwise.
#
# `run_train_graph` opens a session, loads the weights, runs one step and closes the session:
# the weights after the step are fetched before the session closes, since closing it discards the
# variables' values (a). A function that runs one session per step must therefore load the
# weights at every call, 4.65 million numbers for the small config. The engine (f) does not:
# it keeps one session for its whole life, loads the weights once, and every step updates them
# in place in that session.


# %%
def build_train_graph(config, params, batch_size, dtype):
    """The graph of one SGD training step of ``config`` for batches of ``batch_size`` rows,
    with variables shaped like ``params`` (canonical names), and L + 1 mask placeholders
    [T, B, H] when ``config.dropout`` > 0; its parts by name."""
    tf_dtype, hidden, steps = tf.as_dtype(dtype), config.hidden_size, config.num_steps
    graph = tf.Graph()
    with graph.as_default():
        variables = {n: tf.Variable(tf.zeros(v.shape, tf_dtype), name=n) for n, v in params.items()}
        feeds = {n: v1.placeholder(tf_dtype, v.shape) for n, v in params.items()}
        load = tf.group(*[variables[n].assign(feeds[n]) for n in params])
        inputs = v1.placeholder(tf.int32, [batch_size, steps], "inputs")
        targets = v1.placeholder(tf.int32, [batch_size, steps], "targets")
        state = [
            (
                v1.placeholder(tf_dtype, [batch_size, hidden], f"h_{layer}"),
                v1.placeholder(tf_dtype, [batch_size, hidden], f"c_{layer}"),
            )
            for layer in range(config.num_layers)
        ]
        masks = None
        if config.dropout > 0:  # masks[0]: embedded input; masks[l + 1]: layer l's output
            masks = [
                v1.placeholder(tf_dtype, [steps, batch_size, hidden], f"mask_{k}")
                for k in range(config.num_layers + 1)
            ]
        learning_rate = v1.placeholder(tf_dtype, [], "learning_rate")
        logits, final_state = _tf_model.forward(variables, inputs, state, config, masks)
        loss = _tf_model.summed_nll(logits, targets) / tf.constant(batch_size, tf_dtype)
        listed = [variables[n] for n in params]
        gradients = v1.gradients(loss, listed)
        updates, norm = _tf_model.clipped_sgd(
            listed, gradients, learning_rate, config.max_grad_norm
        )
        train = tf.group(*updates)  # one operation that runs every update
        init = v1.global_variables_initializer()
    graph.finalize()  # built: adding an operation from now on is an error
    return dict(
        graph=graph,
        variables=variables,
        feeds=feeds,
        load=load,
        init=init,
        inputs=inputs,
        targets=targets,
        state=state,
        masks=masks,
        learning_rate=learning_rate,
        loss=loss,
        norm=norm,
        final_state=final_state,
        train=train,
    )


def run_train_graph(parts, params, inputs, targets, learning_rate, state, masks=None):
    """One session on the graph of build_train_graph: load ``params``, run one step from
    ``state`` (NumPy (h, c) per layer) with ``masks`` (L + 1 NumPy arrays [T, B, H], given
    when the graph has mask placeholders); returns (loss, norm, params after, final state).
    Floats are fed in the graph's dtype, ids as int32."""
    dtype = parts["learning_rate"].dtype.as_numpy_dtype  # the model's dtype

    def floats(v):
        return np.asarray(v, dtype)

    with v1.Session(graph=parts["graph"]) as session:
        session.run(parts["init"])
        session.run(parts["load"], {parts["feeds"][n]: floats(v) for n, v in params.items()})
        feed = {parts["inputs"]: np.asarray(inputs, np.int32)}
        feed[parts["targets"]] = np.asarray(targets, np.int32)
        feed[parts["learning_rate"]] = floats(learning_rate)
        for (h, c), (h_value, c_value) in zip(parts["state"], state, strict=True):
            feed[h], feed[c] = floats(h_value), floats(c_value)
        if parts["masks"] is not None:
            feed.update((m, floats(v)) for m, v in zip(parts["masks"], masks, strict=True))
        loss, norm, final, _ = session.run(
            [parts["loss"], parts["norm"], parts["final_state"], parts["train"]], feed
        )
        after = session.run(parts["variables"])
    return float(loss), float(norm), after, final


# %% [markdown]
# Built for the small config's batch shape, 20 × 20: the graph and some of its parts, before
# anything runs.

# %%
from ptb_lstm.data import batches
from ptb_lstm.params import init_params

small = PRESETS["small"]
small_params = init_params(small, corpus.vocab_size, np.float64)
parts = build_train_graph(small, small_params, small.batch_size, "float64")
print(f"{len(parts['graph'].get_operations()):,} operations; nothing has run yet")
print("the loss:", parts["loss"])
print("the state fed to layer 0:", parts["state"][0])
print("the training operation:", parts["train"].name, "of type", parts["train"].type)
print("mask placeholders (the small config has dropout 0):", parts["masks"])
first_inputs, _ = next(batches(corpus.train, small.batch_size, small.num_steps))
print("the ids batches yields:", first_inputs.dtype, first_inputs.shape)

# %% [markdown]
# **Masks to feed.** The small config has dropout 0, so its graph has no masks. A config with
# dropout, here `small.replace(dropout=0.5)`, gets them from the function Part I (b) shows and
# the trainer calls at every step, `ptb_lstm.dropout.step_masks(config, step, dtype=...)`: L + 1
# arrays [T, B, H] of 0 (dropped) and $1/(1-\rho)$ (kept) for the 0-based training step `step`,
# a function of the config's seed and the step alone, so the reference engine and the graph are
# handed the same arrays. Its dtype defaults to float32; a float64 model asks for float64 (at
# $\rho = 0.5$ the kept value 2 is exact in both, at 0.65 $1/0.35$ is not). `dropped` below is
# Part I's `small_dropout`: the small config with dropout 0.5.

# %%
from ptb_lstm.dropout import step_masks

dropped = small.replace(dropout=0.5)  # the small model with the medium config's dropout
step_0 = step_masks(dropped, 0, dtype=np.float64)
print("step_masks(small, 0):", step_masks(small, 0))
print(
    f"step_masks(dropped, 0): {len(step_0)} arrays of shape {step_0[0].shape} [T, B, H], "
    f"{step_0[0].dtype}, values {np.unique(step_0[0])}, kept {np.mean(step_0[0] > 0):.3f}"
)
masked_parts = build_train_graph(dropped, small_params, dropped.batch_size, "float64")
print("its graph's mask placeholders:", [m.name for m in masked_parts["masks"]])
print(f"{len(masked_parts['graph'].get_operations()):,} operations (without masks", end=" ")
print(f"{len(parts['graph'].get_operations()):,}: the masks' placeholders, products and gradients)")

# %% [markdown]
# **Checked against Part I's reference engine**, on the first PTB batch from the same weights
# and a zero state, with the same masks: the loss, the gradient norm, the weights after the
# update and the final state, in three cases: the small config (no dropout; its first norm,
# about 3, is below `max_grad_norm` 5, so nothing is clipped); with dropout 0.5; and with
# dropout 0.5 and `max_grad_norm` lowered to 1 (`clip 1`), so that clipping acts (the line
# ends `(clipped)`). Two measures of error, used throughout this part:
#
# * the **relative error** of Part I (e), with its letters: an array $a$ (here the graph's)
#   against the reference's $\hat a$, $\operatorname{err}(a, \hat a) = \max|a - \hat a| /
#   \max|\hat a|$ over the whole array; for a scalar $|a - \hat a| / |\hat a|$. Used for the
#   loss, the norm and the final state, and by `ptb-lstm agree` (below) for everything.
#   `tf_relative_error(reference, other)` computes it, the reference $\hat a$ first;
# * the error **relative to the update**, for the weights after a step from the same $\theta$,
#   $\theta'$ the graph's and $\hat\theta'$ the reference's:
#   $\max|\theta' - \hat\theta'| / \max|\hat\theta' - \theta|$. It is Part I's
#   $\operatorname{err}$ applied to the updates, $\operatorname{err}(\theta' - \theta,\
#   \hat\theta' - \theta)$: the same numerator as $\operatorname{err}(\theta', \hat\theta')$,
#   divided by the size of the update instead of the size of the weights, so it is larger by
#   the factor $\max|\hat\theta'| / \max|\hat\theta' - \theta|$. Used for the weights in this
#   part's checks (here and in Exercise 2), because two runs from the same $\theta$ can differ
#   only through the update, which is small beside the weights: measured against the weights, an
#   update computed wrong, or never applied, would show as no more than the update's size
#   relative to the weights', and could pass.
#
# **Tolerances** (`GRAPH_TOLERANCE`). float64 rounds each operation to within $1.1 \cdot
# 10^{-16}$ of its result; a step's longest sums (the 10,000 terms of a softmax's normaliser, the
# 400 positions of a weight's gradient) are added in another order here than in NumPy, which can
# move a result by up to about (number of terms) × $10^{-16}$, $10^{-12}$ at the very worst;
# roundings of either sign mostly cancel, so the measured errors are expected below $10^{-13}$.
# Every float64 check of this part holds them to $10^{-11}$, a margin of 10 over that worst case and still eight orders of magnitude
# below what a real difference in what is computed gives. float32 rounds to $6 \cdot 10^{-8}$,
# and the same sums take errors up to $10^{-5}$ or so; its checks hold them to $10^{-4}$, the
# limit `ptb-lstm agree` uses for float32.
#
# `reference_graph_step` is the reference engine's step; `against_reference` runs any step given
# as a function `step(config, params, inputs, targets, dtype, masks)` and the reference's, and
# returns the errors.

# %%
from ptb_lstm.engines.numpy_reference import ReferenceEngine

GRAPH_TOLERANCE = {"float64": 1e-11, "float32": 1e-4}  # see the text above


def tf_relative_error(reference, other):
    """max |reference - other| / max |reference| over the whole array."""
    reference, other = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    return float(np.abs(reference - other).max() / np.abs(reference).max())


def reference_graph_step(config, params, inputs, targets, dtype, masks):
    """Part I's train_step from a zero state, with ``masks`` (or None):
    (loss, norm, params after, final state)."""
    engine = ReferenceEngine(config, params, dtype=dtype)
    engine.reset_state(inputs.shape[0])
    loss = engine.train_step(inputs, targets, config.learning_rate, masks)
    return loss, engine.last_grad_norm, engine.get_params(), engine.get_state()


def against_reference(step, config, dtype):
    """Errors of step(config, params, inputs, targets, dtype, masks) -> (loss, norm, params,
    state) against the reference engine's, on the first PTB batch of ``config``, with the
    masks of training step 0 (None without dropout)."""
    params = init_params(config, corpus.vocab_size, np.float64)
    inputs, targets = next(batches(corpus.train, config.batch_size, config.num_steps))
    masks = step_masks(config, 0, dtype=np.dtype(dtype))
    expected = reference_graph_step(config, params, inputs, targets, dtype, masks)
    got = step(config, params, inputs, targets, dtype, masks)
    update = max(  # relative to the update
        float(np.abs(got[2][n] - expected[2][n]).max())
        / float(np.abs(expected[2][n] - params[n].astype(dtype)).max())
        for n in params
    )
    state = max(
        tf_relative_error(a, b)
        for pair, other in zip(expected[3], got[3], strict=True)
        for a, b in zip(pair, other, strict=True)
    )
    return {
        "loss": abs(got[0] - expected[0]) / abs(expected[0]),
        "norm": abs(got[1] - expected[1]) / expected[1],
        "update": update,
        "state": state,
        "clipped": expected[1] > config.max_grad_norm,
    }


def show_errors(label, errors):
    print(
        f"{label:<34} loss {errors['loss']:.1e}  norm {errors['norm']:.1e}  "
        f"weights (of the update) {errors['update']:.1e}  state {errors['state']:.1e}"
        + ("  (clipped)" if errors["clipped"] else "")
    )


def by_hand_graph(config, params, inputs, targets, dtype, masks):
    """build_train_graph, then run_train_graph from a zero state (floats fed in ``dtype``)."""
    parts = build_train_graph(config, params, inputs.shape[0], dtype)
    zeros = np.zeros((inputs.shape[0], config.hidden_size), dtype)
    state = [(zeros, zeros)] * config.num_layers
    return run_train_graph(parts, params, inputs, targets, config.learning_rate, state, masks)


GRAPH_CASES = {  # the three cases, by label
    "no dropout": small,
    "dropout 0.5": dropped,
    "dropout, clip 1": dropped.replace(max_grad_norm=1.0),  # dropout 0.5, max_grad_norm 1
}
for dtype in ("float64", "float32"):
    for case, case_config in GRAPH_CASES.items():
        errors = against_reference(by_hand_graph, case_config, dtype)
        show_errors(f"by hand, {dtype}, {case}", errors)
        assert max(v for k, v in errors.items() if k != "clipped") <= GRAPH_TOLERANCE[dtype]

# %% [markdown]
# **float64: the same function**, with and without masks, clipped or not: the errors are
# rounding, within the expected $10^{-13}$. A real difference in what is computed — a missing
# transpose, a mask in the wrong place, the 1/B forgotten, repeated embedding rows counted apart
# in the norm, an update not run — gives errors of $10^{-3}$ or more (the exercises show one).
#
# **float32: the same function, rounded differently.** float32 keeps 24 bits, about $6 \cdot
# 10^{-8}$ of each result, and the graph does not perform the reference engine's operations in
# the same order: it makes the input projections of all T steps one product where the reference
# engine makes T, its matrix products (Eigen and oneDNN kernels) add the terms of each sum in
# another order than NumPy's BLAS, its fused `sparse_softmax_cross_entropy_with_logits` rounds
# the log-sum-exp differently from Part I's `log_softmax`, and TensorFlow's graph optimiser may
# rewrite and fuse operations before running them. The differences are of the order of float32's
# precision times the size of the sums, about $10^{-8}$ to $10^{-5}$ of the loss, the norm and
# the update after one step: two correct roundings of the same computation, as float64 shows.
# Over many steps of SGD they grow (the full runs below).

# %% [markdown]
# **The step as a pure function.** Part I (g) writes a training step as a pure function,
# `loss, grads, new_state = step_function(params, state, inputs, targets, masks)`, followed by
# `params, norm = update_function(params, grads, learning_rate, max_grad_norm)`, and says that
# the TensorFlow parts compute that form too. The graph of (e) computes the step and the update
# in one run, and the session holds the weights in its variables and changes them in place:
# stateful, like Part I's engine. `graph_step_function(config, params, batch_size, dtype)`
# wraps it in Part I's form: it builds the graph once (for the shapes of `params`) and returns
# `step(params, state, inputs, targets, masks=None)`, with Part I's arguments in Part I's order,
# returning `(loss, new params, new state)`: Part I's order, with the weights after the update
# in the place of the gradients, since the graph applies the update itself (at the config's
# learning rate and `max_grad_norm`). Each call is one `run_train_graph`: a fresh session, the
# weights loaded from `params`, one step, the new weights and state fetched, the session
# closed. So its result depends on its arguments alone and it changes none of them; the price
# is loading the weights at every call, which the engine's one long-lived session (f) avoids.
#
# **From a carried state.** The checks above start from zeros. `two_graph_steps` runs the
# reference engine for two training steps of a config with dropout (the masks of steps 0 and
# 1), and the pure step twice, carrying its own weights and state from the first call into the
# second, so that the second step starts from a state that is not zero (the largest $|h|$ it
# carries is printed). The errors of the second step: the loss, the weights relative to the
# second update ($\theta$ the reference's weights after the first step), the final state; with
# (e)'s tolerances.


# %%
def graph_step_function(config, params, batch_size, dtype):
    """Part I (g)'s pure form over build_train_graph (built once, for the shapes of ``params``):
    step(params, state, inputs, targets, masks=None) -> (loss, new params, new state), at the
    config's learning rate; changes none of its arguments."""
    parts = build_train_graph(config, params, batch_size, dtype)

    def step(params, state, inputs, targets, masks=None):
        loss, _, after, final = run_train_graph(
            parts, params, inputs, targets, config.learning_rate, state, masks
        )
        return loss, after, final

    return step


def two_graph_steps(config, dtype):
    """Errors of the second of two steps of graph_step_function, weights and state carried from
    the first, against the reference engine's two train_steps (masks of steps 0 and 1)."""
    params = init_params(config, corpus.vocab_size, np.float64)
    stream = batches(corpus.train, config.batch_size, config.num_steps)
    batch_list = [next(stream), next(stream)]
    masks = [step_masks(config, k, dtype=np.dtype(dtype)) for k in (0, 1)]
    engine = ReferenceEngine(config, params, dtype=dtype)
    engine.reset_state(config.batch_size)
    engine.train_step(*batch_list[0], config.learning_rate, masks[0])
    between = engine.get_params()  # the reference's weights after the first step
    expected_loss = engine.train_step(*batch_list[1], config.learning_rate, masks[1])
    expected_params, expected_state = engine.get_params(), engine.get_state()
    step = graph_step_function(config, params, config.batch_size, dtype)
    zeros = np.zeros((config.batch_size, config.hidden_size), dtype)
    first = step(params, [(zeros, zeros)] * config.num_layers, *batch_list[0], masks[0])
    _, carried_params, carried_state = first
    loss, after, final = step(carried_params, carried_state, *batch_list[1], masks[1])
    return {
        "carried |h|": max(float(np.abs(h).max()) for h, _ in carried_state),
        "loss": abs(loss - expected_loss) / abs(expected_loss),
        "update": max(
            float(np.abs(after[n] - expected_params[n]).max())
            / float(np.abs(expected_params[n] - between[n]).max())
            for n in params
        ),
        "state": max(
            tf_relative_error(reference, other)
            for pair, other_pair in zip(expected_state, final, strict=True)
            for reference, other in zip(pair, other_pair, strict=True)
        ),
        "clipped": engine.last_grad_norm > config.max_grad_norm,
    }


for dtype in ("float64", "float32"):
    for case in ("dropout 0.5", "dropout, clip 1"):
        errors = two_graph_steps(GRAPH_CASES[case], dtype)
        print(
            f"second step, {dtype}, {case:<16} carried |h| up to {errors['carried |h|']:.2f}; "
            f"loss {errors['loss']:.1e}  weights (of the update) {errors['update']:.1e}  "
            f"state {errors['state']:.1e}" + ("  (clipped)" if errors["clipped"] else "")
        )
        assert errors["carried |h|"] > 0
        assert max(errors[k] for k in ("loss", "update", "state")) <= GRAPH_TOLERANCE[dtype]

# %% [markdown]
# ## (f) The engine, attribute by attribute
#
# `TFGraphEngine` is the graph of (e) behind the toolkit's `Engine` contract
# (`ptb_lstm/engines/__init__.py`), which the trainer, the evaluation and the checkpoints use for
# every engine, with three changes:
#
# * **The carried state lives in variables**, not in feeds and fetches: a training step's
#   graph reads the state from state variables and, once the loss and the updates have run,
#   assigns the final state to them (`_store_state`), so that the state stays in the session from
#   one run to the next and never goes through Python. One set of state variables per batch size
#   (`_StateVariables`), with an operation that zeroes them (`reset`) and one that loads them
#   from placeholders (`load`).
# * **The learning rate is a variable** too, set by a small assign operation, `_set_lr`, run only
#   when the rate changes (once per epoch); `train_step` remembers the rate set in `_lr_value`.
#   Feeding it at every run, as in (e), would work as well.
# * **One set of step operations per batch shape**, built when first needed (`_Unrolled`): the
#   graph is unrolled for a fixed (B, T), so training at 20 × 20 and evaluating one word at a time
#   at 1 × 1 need two, sharing the same weight variables (as the TensorFlow tutorial's train,
#   valid and test models do).
#
# Fetching `step` (the state update, `_store_state`'s operation) runs everything a step needs:
# it waits, by control dependencies, on the loss and on the updates, which nothing else fetched
# reads. What the engine's code uses, and where each comes from:
#
# | name | what it is | defined in |
# |---|---|---|
# | `config` | the `Config`: `num_layers`, `hidden_size`, `num_steps`, `batch_size`, `max_grad_norm`, `optimizer`, ... | `Engine.__init__` |
# | `dtype` | `"float32"` or `"float64"`, a string: NumPy's name of the type of the maths, used to make NumPy arrays to feed (`np.asarray(x, self.dtype)`) | `Engine.__init__` |
# | `tf_dtype` | the same type as TensorFlow's `tf.DType` (`tf.as_dtype(dtype)`), for the placeholders and variables of the graph | `TFGraphEngine.__init__` |
# | `_device` | TensorFlow's name of the device, `"/CPU:0"` or `"/GPU:0"` (`_tf_model.pick_device`); operations built inside `with tf.device(self._device):` are placed there | `TFGraphEngine.__init__` |
# | `graph`, `session` | the engine's own `tf.Graph` and the `v1.Session` that runs it and holds its variables' values | `TFGraphEngine.__init__` |
# | `names` | the parameters' canonical names in canonical order (`param_shapes`) | `TFGraphEngine.__init__` |
# | `variables` | canonical name → `tf.Variable` of the graph, the weights | `TFGraphEngine.__init__` |
# | `_feeds`, `_assign` | a placeholder per weight, and the operation assigning all of them: `set_params` | `TFGraphEngine.__init__` |
# | `learning_rate`, `_lr_feed`, `_set_lr`, `_lr_value` | the learning-rate variable, its placeholder, the assign operation, and the value last set (Python) | `__init__`; `_lr_value` in `train_step` |
# | `slots`, `_slot_feeds`, `_assign_slots`, `corrections`, `t` | Adam's and AMSGrad's moments (Part I (k)) and their loading; the bias corrections fed at every step; the update count. Empty and unused with the paper's SGD | `TFGraphEngine.__init__` |
# | `_states`, `_state(B)` | batch size → `_StateVariables`, created and zeroed when first needed | `TFGraphEngine` |
# | `_ops`, `_unrolled(B, T, train)` | (B, T, train) → `_Unrolled`, the step operations of that shape, built when first needed | `TFGraphEngine` |
# | `_batch_size`, `state` | the batch size of the state in use; `state` reads as that size's state variables, and assigning to it loads values into them (a property) | `TFGraphEngine` |
# | `reset_state`, `get_state`, `set_state`, `_state_for(B)` | the carried state's rules, written once for every engine: zero it, read it as NumPy, replace it; `_state_for` zeroes it when a step of another batch size comes | `Engine` |
# | `_to_numpy`, `_from_numpy` | a state variable to a NumPy array (`session.run`), and a NumPy array in `dtype` to feed | `TFGraphEngine` |
# | `_prepare(inputs, train)` | the step operations for the inputs' shape, with the state of that batch size in use | `TFGraphEngine` |
# | `last_grad_norm` | the last step's norm before clipping, for the trainer's log | `train_step` |
#
# Two more TensorFlow calls appear in them: `v1.name_scope(name)` prefixes the names of the
# operations built inside it (the training operations of the 20 × 20 shape are `train_20x20/...`,
# the state variables of batch size 20 `state_20/h_0`, ...), and `variable.read_value()` is an
# operation reading the variable's value at run time. The pieces, in the order the constructor
# uses them:

# %%
from ptb_lstm.engines import Engine, tf_graph

show_source(tf_graph._StateVariables)
show_source(tf_graph._Unrolled)
show_source(tf_graph._store_state)
show_source(tf_graph.TFGraphEngine.__init__)
show_source(tf_graph.TFGraphEngine._state)
show_source(tf_graph.TFGraphEngine._unrolled)

# %% [markdown]
# The carried state: the base class's rules, and the property through which this engine keeps it
# in graph variables. `reset_state(B)` makes NumPy zeros and calls `set_state`, which converts
# them with `_from_numpy` and assigns them to `state`; the property's setter runs the `load`
# operation of that batch size's state variables. `_state_for(B)` reads `state`'s shape and
# resets when B differs.

# %%
show_source(Engine.reset_state)
show_source(Engine.set_state)
show_source(Engine.get_state)
show_source(Engine._state_for)
show_source(tf_graph.TFGraphEngine.state.fget)
show_source(tf_graph.TFGraphEngine.state.fset)
show_source(tf_graph.TFGraphEngine._to_numpy)
show_source(tf_graph.TFGraphEngine._from_numpy)

# %% [markdown]
# How the weights come back as NumPy arrays (one `session.run` fetching the dict of variables)
# and go in (the `_assign` operation, fed), then a training step: `_prepare` picks the step
# operations of the batch's shape, `_set_lr` runs when the rate changed, and one `session.run`
# feeds the batch and fetches the loss, the norm and `step`:

# %%
show_source(tf_graph.TFGraphEngine.get_params)
show_source(tf_graph.TFGraphEngine.set_params)
show_source(tf_graph.TFGraphEngine._prepare)
show_source(tf_graph.TFGraphEngine.train_step)

# %% [markdown]
# The same attributes on a live engine (a shrunk small model, float64, on the CPU): the graph
# grows when a new batch shape comes, and the learning-rate variable is set only when the rate
# changes.

# %%
little = small.replace(hidden_size=8, num_steps=5, batch_size=3)
little_params = init_params(little, corpus.vocab_size, np.float64)
engine = tf_graph.TFGraphEngine(little, little_params, dtype="float64", device="cpu")
print("dtype", repr(engine.dtype), "| tf_dtype", engine.tf_dtype, "| _device", engine._device)
print("names", engine.names)
print("variables['embedding']:", engine.variables["embedding"].name, end=" ")
print(engine.variables["embedding"].shape, "| slots (SGD keeps none):", engine.slots)
print("step operations built:", list(engine._ops), "| state variables:", list(engine._states))
print("state: layer 0's h is the variable", engine.state[0][0].name)
weights = engine.get_params()
print("get_params():", type(weights["embedding"]).__name__, "equal to what it was given:", end=" ")
print(all((weights[n] == little_params[n]).all() for n in engine.names))
inputs, targets = next(batches(corpus.train, little.batch_size, little.num_steps))
before = len(engine.graph.get_operations())
engine.train_step(inputs, targets, learning_rate=1.0)
print(f"a step at learning rate 1.0: _lr_value {engine._lr_value}; operations {before:,}", end="")
print(f" -> {len(engine.graph.get_operations()):,} (the constructor built the training shape)")
print("after it, h of layer 0 (get_state) is nonzero:", bool(np.any(engine.get_state()[0][0])))
engine.eval_step(inputs[:1, :1], targets[:1, :1])  # one word: a new shape, a new batch size
print(f"an evaluation at 1 x 1: operations -> {len(engine.graph.get_operations()):,};", end=" ")
print("step operations built:", list(engine._ops), "| state variables:", list(engine._states))

# %% [markdown]
# The engine against the reference engine on the same small-config batch as in (e), without
# dropout and in (e)'s third case (dropout 0.5, clipped), with (e)'s measures and tolerances:


# %%
def graph_engine_step(config, params, inputs, targets, dtype, masks):
    """The tf-graph engine's train_step from a zero state, with ``masks`` (or None)."""
    engine = tf_graph.TFGraphEngine(config, params, dtype=dtype, device="cpu")
    engine.reset_state(inputs.shape[0])
    loss = engine.train_step(inputs, targets, config.learning_rate, masks)
    return loss, engine.last_grad_norm, engine.get_params(), engine.get_state()


for dtype in ("float64", "float32"):
    for case in ("no dropout", "dropout, clip 1"):
        errors = against_reference(graph_engine_step, GRAPH_CASES[case], dtype)
        show_errors(f"engine, {dtype}, {case}", errors)
        assert max(v for k, v in errors.items() if k != "clipped") <= GRAPH_TOLERANCE[dtype]

# %% [markdown]
# Over several steps, the toolkit's agreement check (`ptb-lstm agree`, `docs/agreement.md`): five
# training steps of the tiny model from the same weights on the same batches (the learning rate
# halved after the third), the largest relative errors against the `numpy` engine of the
# per-step losses, of every parameter and of the valid perplexity. Its errors are all relative
# errors of arrays, the parameters' too (relative to the whole array, a looser measure than
# relative to the update by the ratio of the weights' size to the steps'), and its limits are
# the toolkit's, `agreement.LIMITS`: 1e-9 in float64 and 1e-4 in float32. The float64 one is
# wider than this part's $10^{-11}$ because the command judges every engine on any device (a
# GPU's kernels add in yet other orders) over five steps; the measured errors sit far below
# either.

# %%
from ptb_lstm.agreement import LIMITS, compare

rows = [
    row
    for dtype in ("float64", "float32")
    for row in compare(["tf-graph"], PRESETS["tiny"], corpus, dtype, steps=5)
]
print(f"{'engine':<16} {'dtype':<8} {'losses':>9} {'params':>9} {'valid ppl':>10}")
for r in rows:
    print(f"{r.engine:<16} {r.dtype:<8} {r.loss:>9.2e} {r.params:>9.2e} {r.perplexity:>10.2e}")
assert all(max(r.loss, r.params, r.perplexity) <= LIMITS[r.dtype] for r in rows)

# %% [markdown]
# ## (g) The engine's graph, counted and drawn
#
# The real graph of the tiny model (2 layers of 16 units, 5 steps), by operation type. The
# forward pass has 13 products (the recurrent one at each of 5 steps in each of 2 layers, one input
# projection per layer, the softmax), and the backward pass two per product (one for each input:
# `v1.gradients` adds both, and the one towards the carried-in state, which nothing needs, never
# runs), 39 `MatMul` in all; `Sigmoid` and `Tanh` count 3 and 2 per step and layer, and
# `SigmoidGrad` and `TanhGrad` are their derivatives in the backward pass; `AddN` sums the gradients
# of a tensor used more than once:

# %%
import collections

from ptb_lstm.params import init_params, param_shapes

tiny = PRESETS["tiny"]
tiny_engine = tf_graph.TFGraphEngine(tiny, init_params(tiny, corpus.vocab_size))
ops = tiny_engine.graph.get_operations()
print(f"{len(ops)} operations in the graph")
for kind, n in collections.Counter(op.type for op in ops).most_common(12):
    print(f"{n:6}  {kind}")

# %% [markdown]
# A picture of a small graph: the forward pass of one LSTM layer of 2 units over one time step,
# built by the same `_tf_model.forward` (placeholders in blue, variables in green; each
# column holds the operations whose inputs are all to their left):

# %% figure="notebook3-graph"
from ptb_lstm.engines import _tf_model

# names of its own, so that the names of the cells above keep their meaning
one_unit = PRESETS["tiny"].replace(num_layers=1, hidden_size=2, num_steps=1, batch_size=1)
picture = tf.Graph()
with picture.as_default():
    picture_params = {
        n: tf.Variable(tf.zeros(s), name=n) for n, s in param_shapes(one_unit, 5).items()
    }
    word_ids = v1.placeholder(tf.int32, [1, 1], "word_ids")
    picture_state = [
        (v1.placeholder(tf.float32, [1, 2], "h_in"), v1.placeholder(tf.float32, [1, 2], "c_in"))
    ]
    picture_logits, picture_final = _tf_model.forward(
        picture_params, word_ids, picture_state, one_unit
    )

leaves = {"Placeholder", "VarHandleOp"}  # inputs and variables, drawn next to their first use
hidden = {"Const", "NoOp", "AssignVariableOp", "VarIsInitializedOp"}
through = {"ReadVariableOp", "Identity"}  # drawn as the edge they pass a value along


def sources(op):
    # the drawn operations feeding op, looking through reads and identities
    found = []
    for t in op.inputs:
        if t.op.type in through:
            found += sources(t.op)
        elif t.op.type not in hidden:
            found.append(t.op)
    return found


keep, todo = set(), [picture_logits.op, picture_final[0][0].op, picture_final[0][1].op]
while todo:  # the ancestors of the outputs
    op = todo.pop()
    if op not in keep:
        keep.add(op)
        todo.extend(t.op for t in op.inputs)
nodes = [op for op in picture.get_operations() if op in keep and op.type not in hidden | through]
depth = {}
for op in nodes:  # creation order is a topological order
    if op.type not in leaves:
        depth[op] = 1 + max([depth.get(s, 0) for s in sources(op)], default=0)
for op in nodes:
    if op.type in leaves:
        depth[op] = min(depth[c] for c in nodes if op in sources(c)) - 1
columns = collections.defaultdict(list)
for op in nodes:
    columns[depth[op]].append(op)
where = {
    op: (d, 1.2 * (len(col) / 2 - k)) for d, col in columns.items() for k, op in enumerate(col)
}


def label(op):
    return op.name.replace("lstm_0_", "").replace("_", "\n") if op.type in leaves else op.type


fig, ax = plt.subplots(figsize=(15, 5.5))
for op in nodes:
    for source in sources(op):
        ax.annotate(
            "",
            where[op],
            where[source],
            arrowprops=dict(arrowstyle="->", color="grey", lw=0.7, shrinkA=14, shrinkB=14),
        )
for op, (px, py) in where.items():
    color = (
        "#cfe0f5"
        if op.type == "Placeholder"
        else "#d9f0d3"
        if op.type == "VarHandleOp"
        else "#fde2c4"
    )
    ax.text(
        px,
        py,
        label(op),
        ha="center",
        va="center",
        fontsize=7,
        bbox=dict(boxstyle="round", fc=color, ec="grey"),
    )
ax.set_xlim(-0.7, max(depth.values()) + 0.7)
ax.set_ylim(min(y for _, y in where.values()) - 0.8, max(y for _, y in where.values()) + 0.8)
ax.axis("off")
ax.set_title(f"one LSTM step as a dataflow graph: {len(nodes)} operations")
plt.show()

# %% [markdown]
# ## (h) A short run on PTB, and the full results
#
# The toolkit's trainer with the `tf-graph` engine: `STEPS` steps of the small config, then a
# pass over the valid split. The seconds printed count both, and the engine's set-up (building
# the graph). They are measured live, on whatever machine runs the notebook and beside whatever
# else runs there: no benchmark (`make bench` is). TensorFlow sizes its own thread pools, apart
# from NumPy's BLAS threads of Part I (h): `tf.config.threading.set_intra_op_parallelism_threads(n)`
# (threads inside one operation) and `set_inter_op_parallelism_threads(n)` (operations run at
# once) set them, before TensorFlow runs its first operation; this part keeps the defaults.

# %%
import tempfile

from ptb_lstm.engines import create_engine
from ptb_lstm.metrics import read_metrics
from ptb_lstm.params import init_params
from ptb_lstm.train import train

config = PRESETS["small"]
short_run_engine = create_engine("tf-graph", config, init_params(config, corpus.vocab_size))
out = tempfile.mkdtemp(prefix="ptb-lstm-notebook-")
started = time.perf_counter()
result = train(config, corpus, short_run_engine, out, max_steps=STEPS, log_every=10)
seconds = time.perf_counter() - started
records = [r for r in read_metrics(f"{out}/metrics.jsonl") if r["event"] == "step"]
print(
    f"{STEPS} steps of the small config with the tf-graph engine, then a pass over the "
    f"valid split, in {seconds:.0f} s; valid perplexity {result.valid.perplexity:.1f}"
)

# %% figure="notebook3-curve"
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot([r["step"] for r in records], [r["perplexity"] for r in records])
ax.set_xlabel("training step")
ax.set_ylabel("running training perplexity")
ax.set_yscale("log")
ax.set_title("small config, TensorFlow graph engine, first steps")
ax.grid(True, which="both", alpha=0.3)
plt.show()
print(f"ms per step: {result.epochs[-1]['ms_per_step']:.1f}")

# %% [markdown]
# ### The three engines' full runs
#
# Each engine trained the small config for 13 epochs from the same seeded weights on 2 CPU cores
# (`make reproduce`; the commands are in each run's `config.json` in `docs/results/`). Train is
# the last epoch's mean training perplexity; valid and test are at the training batch shape
# (20 × 20), test 1x1 evaluates one word at a time. The engines agree step by step to float
# tolerance; over 30,199 steps of SGD their float32 rounding differences grow until the runs are
# different samples of the same training, so their final figures differ by run-to-run
# variation, not by what they compute. That holds for the two TensorFlow engines as well. Over
# the five tiny steps above they print the same differences from `numpy`, but they run the same
# operations through different runtimes (the graph's is rewritten and scheduled as a whole), and
# on the small model their five-step float32 parameters already lie 1.54e-5 and 1.53e-5 from
# `numpy`'s, not at one distance (`docs/agreement.md`); their full runs, from the same weights,
# ended 2.2 apart in valid perplexity. The short runs of Parts II and III, from the same weights
# too, already end at slightly different valid perplexities after 100 steps. The paper's small
# model: valid 120.7, test 114.5.


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


results_table(["numpy", "tf-eager", "tf-graph"], published=False)

# %% [markdown]
# Their learning curves, as `make reproduce` draws them with `ptb-lstm plot`:

# %%
from IPython.display import Image

figure = REPO / "docs" / "figures" / "results-curves.png"
display(Image(filename=str(figure))) if figure.is_file() else print(
    "no figure yet: run make reproduce"
)

# %% [markdown]
# ## (i) Exercises
#
# Two exercises, each with a cell that checks your answer: it prints `not yet done` while the
# answer is the stub given, `ok` for a right answer and `WRONG` (with what differs) for a wrong
# one. Write yours in place of the stub and run the check cell. The answers follow the
# exercises, after a line; each is run through its check, and so is a wrong answer.
#
# **Exercise 1: count the unrolled graph.** For a model of L layers unrolled over T steps,
# how many operations of type `MatMul`, `Sigmoid` and `Tanh` does the graph of a training step
# hold (the forward pass, the loss and `v1.gradients` of it with respect to every weight, as
# `build_train_graph` of (e) builds it)? Write `my_op_counts(num_layers, num_steps)` returning
# `{"MatMul": ..., "Sigmoid": ..., "Tanh": ...}` as formulas in L and T (sections (d), (g)).
# `check_op_counts` builds the graph for three shapes and counts.


# %%
def check_op_counts(my_op_counts):
    """my_op_counts(num_layers, num_steps) -> {"MatMul": n, "Sigmoid": n, "Tanh": n}, against
    the graph build_train_graph builds, for three (L, T)."""
    wrong = 0
    for num_layers, num_steps in ((1, 1), (2, 3), (3, 4)):
        config = PRESETS["tiny"].replace(
            num_layers=num_layers, num_steps=num_steps, hidden_size=4, batch_size=2
        )
        params = init_params(config, 11, np.float64)
        graph = build_train_graph(config, params, config.batch_size, "float64")["graph"]
        kinds = collections.Counter(op.type for op in graph.get_operations())
        actual = {kind: kinds[kind] for kind in ("MatMul", "Sigmoid", "Tanh")}
        try:
            guess = my_op_counts(num_layers, num_steps)
        except NotImplementedError:
            print("not yet done: write my_op_counts")
            return
        ok = guess == actual
        wrong += not ok
        print(f"L = {num_layers}, T = {num_steps}: the graph holds {actual}; yours {guess}", end="")
        print("  ok" if ok else "  WRONG")
    print("all ok" if not wrong else f"{wrong} of 3 shapes WRONG")


def my_op_counts(num_layers, num_steps):
    raise NotImplementedError  # your answer here


check_op_counts(my_op_counts)

# %% [markdown]
# **Exercise 2: build once, run several steps.** Write `my_graph_train(config, params,
# batch_list, learning_rates)` that builds the graph of a training step **once** and runs it for
# each batch in turn, in one session, carrying the state from one step to the next (from zeros),
# and returns `(losses, params_after)`: the list of the steps' losses (each the loss before its
# update, as a float) and the weights after the last step, a dict of NumPy arrays under the
# canonical names.
#
# * `config`: the `Config` (`max_grad_norm`, `num_layers`, `hidden_size`, `batch_size`, ...);
#   `params`: canonical name → NumPy array (float64), the starting weights; build in float64;
# * `batch_list`: a list of `(inputs, targets)`, NumPy ids [B, T]; `learning_rates`: one Python
#   float per batch, not all equal;
# * no dropout.
#
# You may use `_tf_model`'s functions, or `build_train_graph` of (e) and write the loop of runs.
# `check_graph_train` runs yours and Part I's `ReferenceEngine` on the tiny config's first three
# PTB batches at learning rates 1, 0.5 and 0.25, twice: with `max_grad_norm` 0.5, where clipping
# acts, and 5, where it does not. The losses (relative error) and the weights (relative to the
# update) must be within $10^{-11}$, (e)'s float64 tolerance: three steps add little to one
# step's rounding.


# %%
def check_graph_train(my_graph_train):
    """my_graph_train(config, params, batch_list, learning_rates) -> (losses, params after),
    against ReferenceEngine.train_step on three PTB batches of the tiny config (float64), with
    clipping acting and without."""
    rates = [1.0, 0.5, 0.25]
    wrong = 0
    for clip in (0.5, 5.0):
        config = PRESETS["tiny"].replace(max_grad_norm=clip)
        params = init_params(config, corpus.vocab_size, np.float64)
        stream = batches(corpus.train, config.batch_size, config.num_steps)
        batch_list = [next(stream) for _ in rates]
        engine = ReferenceEngine(config, params, dtype="float64")
        engine.reset_state(config.batch_size)
        expected = [
            engine.train_step(x, y, rate) for (x, y), rate in zip(batch_list, rates, strict=True)
        ]
        try:
            losses, after = my_graph_train(config, params, batch_list, rates)
        except NotImplementedError:
            print("not yet done: write my_graph_train")
            return
        loss_error = max(abs(a - b) / abs(a) for a, b in zip(expected, losses, strict=True))
        weights = max(
            float(np.abs(np.asarray(after[n]) - engine.params[n]).max())
            / float(np.abs(engine.params[n] - params[n]).max())
            for n in params
        )
        ok = max(loss_error, weights) <= GRAPH_TOLERANCE["float64"]
        wrong += not ok
        print(
            f"max_grad_norm {clip}: norm of the last step {engine.last_grad_norm:.3f}; "
            f"errors: losses {loss_error:.1e}, weights {weights:.1e}  {'ok' if ok else 'WRONG'}"
        )
    print("all ok" if not wrong else "WRONG")


def my_graph_train(config, params, batch_list, learning_rates):
    raise NotImplementedError  # your answer here


check_graph_train(my_graph_train)

# %% [markdown]
# ---
#
# **Stop here and write yours first: the answers follow.**
#
# **Exercise 1.** The forward pass has $L(T + 1) + 1$ products: in each layer one input
# projection for all T steps and one recurrent product per step, and the softmax's. The backward
# pass adds two per product, the gradients towards each of its two inputs (`v1.gradients` adds
# both, even the one towards the carried-in state that nothing fetches), so $3(L(T+1) + 1)$
# `MatMul` in all. Each step of each layer has 3 sigmoids (i, f, o) and 2 tanh (g and
# $\tanh c_t$): $3LT$ and $2LT$; their derivatives are separate operation types (`SigmoidGrad`,
# `TanhGrad`). The check on that answer, and on one that forgets the backward pass:

# %%
check_op_counts(
    lambda L, T: {"MatMul": 3 * (L * (T + 1) + 1), "Sigmoid": 3 * L * T, "Tanh": 2 * L * T}
)
print("and:")
check_op_counts(lambda L, T: {"MatMul": L * (T + 1) + 1, "Sigmoid": 3 * L * T, "Tanh": 2 * L * T})

# %% [markdown]
# **Exercise 2.** The graph of (e), built once; one session; at each step the batch, the
# learning rate and the state are fed, and the loss, the final state and `train` are fetched.
# Then an answer that fetches the loss and the final state but not `train`: the session runs
# only what the fetches need, the updates never run, and the weights never move.


# %%
def graph_train(config, params, batch_list, learning_rates, fetch_train=True):
    """build_train_graph once, then one run per batch in one session (float64); floats fed as
    float64, ids as int32, (e)'s rule."""
    parts = build_train_graph(config, params, config.batch_size, "float64")
    zeros = np.zeros((config.batch_size, config.hidden_size), np.float64)
    state = [(zeros, zeros)] * config.num_layers
    fetches = [parts["loss"], parts["final_state"]] + ([parts["train"]] if fetch_train else [])
    losses = []
    with v1.Session(graph=parts["graph"]) as session:
        session.run(parts["init"])
        weights = {parts["feeds"][n]: np.asarray(v, np.float64) for n, v in params.items()}
        session.run(parts["load"], weights)
        for (inputs, targets), rate in zip(batch_list, learning_rates, strict=True):
            feed = {parts["inputs"]: np.asarray(inputs, np.int32)}
            feed[parts["targets"]] = np.asarray(targets, np.int32)
            feed[parts["learning_rate"]] = np.float64(rate)
            for (h, c), (h_value, c_value) in zip(parts["state"], state, strict=True):
                feed[h], feed[c] = np.asarray(h_value, np.float64), np.asarray(c_value, np.float64)
            loss, state, *_ = session.run(fetches, feed)
            losses.append(float(loss))
        return losses, session.run(parts["variables"])


check_graph_train(graph_train)
print("and without fetching train:")
check_graph_train(lambda *args: graph_train(*args, fetch_train=False))
