"""Parts II and III of the series: the same model with TensorFlow, eager and as a graph."""

from __future__ import annotations

from common import CURVE, RESULTS, SETUP, SHORT_RUN, agreement_cell, code, md

IMPORT_TF = """\
from ptb_lstm.engines import quiet_native_stderr
with quiet_native_stderr():  # TensorFlow probes for GPUs as it loads; that chatter is held back
    import tensorflow as tf
print("TensorFlow", tf.__version__)"""

# -- Part II ---------------------------------------------------------------------------------

TWO_INTRO = r"""# Part II — the same model with TensorFlow eager execution

Part I wrote every derivative by hand. Here TensorFlow computes them: in **eager execution**
each TensorFlow operation runs as soon as Python reaches it and returns a value, as NumPy does,
and a `tf.GradientTape` records the operations run inside it so that it can play them backwards
— back-propagation done by the library, for any computation. The toolkit's `tf-eager` engine
(`ptb_lstm/engines/tf_eager.py`) holds the same parameters as the NumPy engines, under the same
names and layout, and computes the same function."""

TAPE = r"""## GradientTape in a few lines

$y = \sigma(w x)$ at $w = 0.7$, $x = 2$. By hand (Part I, step 7 and the chain rule):
$\partial y/\partial w = \sigma(wx)\,(1 - \sigma(wx))\,x$."""

TAPE_CODE = """\
w, x = tf.Variable(0.7, dtype=tf.float64), tf.constant(2.0, tf.float64)
with tf.GradientTape() as tape:         # records the operations on watched values: trainable
                                        # variables are watched by themselves, a constant needs tape.watch
    y = tf.sigmoid(w * x)               # runs now: y is a value
by_tape = tape.gradient(y, w)            # the record played backwards
by_hand = tf.sigmoid(w * x) * (1 - tf.sigmoid(w * x)) * x
print(f"y = {float(y):.6f}; dy/dw by the tape {float(by_tape):.12f}, by hand {float(by_hand):.12f}")
assert abs(float(by_tape) - float(by_hand)) < 1e-15"""

SIDE = r"""## The model in TensorFlow operations

The TensorFlow engines share one function, `_tf_model.forward`, that writes the model with
TensorFlow operations. Read it beside the reference engine of Part I:

| equation | reference engine (NumPy, Part I) | `_tf_model.forward` |
|---|---|---|
| $x_t = E[w_t]$ | `x = p["embedding"][ids]` | `x = tf.nn.embedding_lookup(params["embedding"], ids)` |
| dropout | `x = x * masks[0]` | `x = x * masks[layer]` |
| $x_t W + b$ | inside the loop, `x[t] @ W + ... + b` | once for all steps: `tf.matmul(tf.reshape(x, [-1, hidden]), kernel) + bias` |
| $z_t = \ldots + h_{t-1} U$ | `h[t] @ U` | `projected[t] + tf.matmul(h, recurrent)` |
| i, f, g, o | `sigmoid(z[:, 0 * H:1 * H])`, ... | `z_i, z_f, z_g, z_o = tf.split(z, 4, axis=1)` |
| $c_t = f \odot c_{t-1} + i \odot g$ | `c[t + 1] = f[t] * c[t] + i[t] * g[t]` | `c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_g)` |
| $h_t = o \odot \tanh c_t$ | `h[t + 1] = o[t] * np.tanh(c[t + 1])` | `h = tf.sigmoid(z_o) * tf.tanh(c)` |
| $y = h W_s + b_s$ | `x @ p["softmax_kernel"] + p["softmax_bias"]` | `tf.matmul(..., params["softmax_kernel"]) + params["softmax_bias"]` |
| $-\log p[w_{t+1}]$ | `log_softmax`, `nll` | `tf.nn.sparse_softmax_cross_entropy_with_logits` |

There is no backward pass to write: everything after the loss is `tape.gradient`."""

SIDE_CODE = """\
from ptb_lstm.engines import _tf_model
show_source(_tf_model.forward)
show_source(_tf_model.summed_nll)"""

STEP = r"""## One training step

The engine's `train_step`: the forward pass and the loss (summed over time, averaged over the
batch, as in Part I (d)) run inside the tape; `tape.gradient` returns the gradient of every
variable; clipping and SGD follow (below). No `tf.function` wraps it (`tf.function` would trace
the Python code into a graph once, the way Part III builds one): every operation runs eagerly,
one Python call at a time (`tf.device` places them on the CPU or a GPU). The carried state enters the tape as a plain value, computed by the
previous step outside this tape, so the gradient stops at the batch boundary: truncated BPTT
(Part I (e)) comes for free."""

STEP_CODE = """\
from ptb_lstm.engines.tf_eager import TFEagerEngine
show_source(TFEagerEngine.train_step)"""

SLICES = r"""## The embedding's gradient arrives as `IndexedSlices`

The embedding lookup reads only the rows of the batch's words, so the gradient of $E$ is zero
everywhere else (Part I, step 9). Instead of a dense [10,000, 200] array the tape returns a
`tf.IndexedSlices`: the list of row indices the lookup read, one per position (repeats
included), and the gradient row of each. Turned into a dense array, repeated indices add up —
the reference engine's scatter-add `np.add.at`. A small example, with a word (row 1) used twice:"""

SLICES_CODE = """\
E = tf.Variable(np.arange(12.0).reshape(6, 2))  # a 6-word embedding of width 2
ids = tf.constant([1, 4, 1])
upstream = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], tf.float64)  # some dL/dx per position
with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.nn.embedding_lookup(E, ids) * upstream)
grad = tape.gradient(loss, E)
print(type(grad).__name__, "indices", grad.indices.numpy(), "values", grad.values.numpy().tolist())
dense = np.zeros((6, 2)); np.add.at(dense, ids.numpy(), upstream.numpy())  # the reference's way
assert (tf.convert_to_tensor(grad).numpy() == dense).all()
print("as a dense gradient (row 1 = [1, 2] + [5, 6]):\\n", dense)"""

SLICES_UPDATE = r"""Two things follow. **The norm**: $\lVert[1,2]\rVert^2 + \lVert[5,6]\rVert^2$ is not
$\lVert[6,8]\rVert^2$, so the norm used for clipping must be taken after the repeated rows are
summed, or the TensorFlow engines would clip differently from the NumPy ones (a norm such as
`tf.linalg.global_norm` squares an `IndexedSlices`' values as they are, repeated rows
unmerged); `sum_duplicate_rows` does that: `tf.unique` gives the distinct rows and, for each
position, the index of its row among them, and `tf.math.unsorted_segment_sum` adds up the
values that share an index. **The update**:
`variable.scatter_sub` subtracts the clipped, scaled rows from only those rows of the
variable, leaving every other row untouched, as the `numpy` engine's sparse update does."""

SLICES_UPDATE_CODE = """\
merged = _tf_model.sum_duplicate_rows(grad)
print("merged: indices", merged.indices.numpy(), "values", merged.values.numpy().tolist())
E.scatter_sub(tf.IndexedSlices(0.5 * merged.values, merged.indices))
print("E after a step of 0.5 on rows 1 and 4 only:\\n", E.numpy())
show_source(_tf_model.sum_duplicate_rows)
show_source(_tf_model.clipped_sgd)"""

TWO_AGREE = r"""## Does it compute the same function?

Same seeded weights, same PTB batches, five training steps each (the learning rate halved
after the third), then the largest relative differences, against the `numpy` engine, of the
per-step losses, of every parameter and of the valid perplexity, on the tiny model so that it
runs in seconds. The reference engine of Part I is in the table too: all three compute one
function, to rounding."""

TWO_RUN = r"""## A short run on PTB

The toolkit's trainer with the `tf-eager` engine: `STEPS` steps of the small config, then a
pass over the valid split. The seconds printed count both, and the engine's set-up. The time per
step is measured live, on whatever machine runs the notebook and beside whatever else runs
there, and the first steps also pay TensorFlow's warm-up: it is no benchmark (`make bench` is;
the full run below is another measure)."""

TWO_RESULTS = r"""## The full run

Eager execution pays Python's and TensorFlow's dispatch cost for every one of the many small
operations of a step (Part III counts 719 operations in the graph of the tiny model, 5 time
steps, constants and set-up included; the small config unrolls 20); on 2 CPU cores the 13
epochs took about twice as long as the `numpy` engine's. Its results, from
`docs/results/tf-eager/`, beside the `numpy` engine's. The full runs are float32: over 30,199
steps of SGD at learning rate 1 the engines' rounding differences grow until the runs are
different samples of the same training (Part III; `docs/agreement.md`), so their figures differ
by that run-to-run variation, not by what they compute:"""


def part_two() -> list:
    return [
        md(TWO_INTRO), code(SETUP.format(steps=100)), code(IMPORT_TF),
        md(TAPE), code(TAPE_CODE),
        md(SIDE), code(SIDE_CODE),
        md(STEP), code(STEP_CODE),
        md(SLICES), code(SLICES_CODE), md(SLICES_UPDATE), code(SLICES_UPDATE_CODE),
        md(TWO_AGREE), code(agreement_cell("numpy-reference", "tf-eager")),
        md(TWO_RUN), code(SHORT_RUN.format(engine="tf-eager")),
        code(CURVE.format(title="small config, TensorFlow eager engine, first steps"),
             figure="notebook2-curve"),
        md(TWO_RESULTS), code(RESULTS + '\nresults_table(["tf-eager", "numpy"])'),
        md("Part III describes the same computation once, as a graph, and runs it in a "
           "session."),
    ]


# -- Part III --------------------------------------------------------------------------------

THREE_INTRO = r"""# Part III — the same model as a TensorFlow graph run in a session

In **graph execution** a program first *describes* the computation and only then runs it. Each
TensorFlow call adds an operation (a node) to a dataflow graph, whose edges are the tensors
flowing between operations; nothing is computed while the graph is built. A `Session` then runs
the part of the graph needed for what it is asked to *fetch*, with values *fed* into
placeholders. The toolkit's `tf-graph` engine (`ptb_lstm/engines/tf_graph.py`) builds its graph
with `tf.compat.v1` (TensorFlow 1's API, where `Session` and `placeholder` still live) once
and runs it step by step. Graph building is local: only code inside
a `with graph.as_default():` block adds to that graph, and eager execution stays on for the
rest of the process."""

TOY = r"""## A toy graph first

$y = w x + 1$, its derivative, and an update, as a graph. Building it prints no numbers — `y` is
a symbolic tensor with a shape and a type (`y:0`, output 0 of the operation `y`); the session
computes. In the list of operations, a variable is a handle (`w`) with its initializer and
assignment (`w/Initializer/...`, `w/Assign`); every use of it adds a `ReadVariableOp`; the
constants 1.0 and 0.1 are nodes too (`y/y`, `mul_1/x`); `mul_1` and `AssignSubVariableOp` are
the update."""

TOY_CODE = """\
v1 = tf.compat.v1
toy = tf.Graph()
with toy.as_default():                                   # calls below add nodes to `toy`
    x = v1.placeholder(tf.float32, [None], name="x")      # an input, fed at run time
    w = tf.Variable(3.0, name="w")                        # state kept by the session
    y = tf.add(w * x, 1.0, name="y")                      # y = w x + 1: a node, not a value
    loss = tf.reduce_sum(y, name="loss")
    (dw,) = v1.gradients(loss, [w])                       # more nodes: d loss / d w
    step = w.assign_sub(0.1 * dw)                         # an update node
    init = v1.global_variables_initializer()
print("y is", y)
print("the graph's operations:", [op.name for op in toy.get_operations() if "gradients" not in op.name])
with v1.Session(graph=toy) as session:
    session.run(init)                                     # give w its initial value
    print("fetch y, feeding x = [1, 2]:", session.run(y, feed_dict={x: [1.0, 2.0]}))
    print("fetch dw (= sum of x):", session.run(dw, feed_dict={x: [1.0, 2.0]}))
    session.run(step, feed_dict={x: [1.0, 2.0]})         # runs the update and what it needs
    print("w after one step:", session.run(w))"""

CONTROL = r"""**Control dependencies.** A session runs only what a fetch needs, in any order the
dependencies allow. An operation whose output no fetched operation needs never runs: the SGD
updates of a training step, for example. `tf.control_dependencies` makes one
operation wait for others it does not read, so that fetching it runs them too. (An order that a
data edge already fixes needs no such edge: a value computed from a read comes after the
read.)"""

CONTROL_CODE = """\
with toy.as_default():
    counter = tf.Variable(0, name="counter")
    with tf.control_dependencies([y]):                    # after y, although it does not read y
        count = counter.assign_add(1)
with v1.Session(graph=toy) as session:
    session.run(v1.global_variables_initializer())
    for _ in range(3):
        session.run(count, {x: [1.0]})                    # needs a feed for x: it runs y first
    print("counter after fetching count 3 times:", session.run(counter))
    for _ in range(2):
        session.run(y, {x: [1.0]})                        # y alone does not need count
    print("and after fetching y twice more:", session.run(counter))"""

ENGINE_GRAPH = r"""## How the engine builds its graph

`_Unrolled` adds the operations of one training (or evaluation) step to the engine's graph:
placeholders for the word ids, the targets and (with dropout) the masks; the state read from
state *variables*, so that it is carried from one `session.run` to the next inside the session;
the same `_tf_model.forward` as Part II; `tf.gradients` (`v1.gradients`) in place of the tape,
which adds the backward pass to the graph as more operations; the same `clipped_sgd`; and
`_store_state`, which writes the final state into the state variables under a control
dependency on the loss and the updates: `train_step` fetches it, and through that dependency
the SGD updates run, which nothing else it fetches reads. (`tf.group` makes one operation of
several.)

The graph is **unrolled**: the Python loop over time steps in `_tf_model.forward` runs once,
while the graph is built, and leaves T copies of the step's operations in the graph. So each
batch shape (rows × steps) needs its own set of operations in the engine's graph, one
`_Unrolled` per shape, built when first needed: training at 20 × 20 and evaluating at 1 × 1
are two. The learning rate is a variable, set by a small assign
operation (`_set_lr`) when it changes: a Python float would be frozen into the graph as a
constant."""

ENGINE_GRAPH_CODE = """\
from ptb_lstm.engines import tf_graph
show_source(tf_graph._StateVariables)
show_source(tf_graph._Unrolled)
show_source(tf_graph._store_state)"""

RUN_STEP = r"""The weights are variables too, created in `TFGraphEngine.__init__` with a placeholder and an
assign operation to load them (given as initial values, they would be stored in the graph as
constants: 4.65 million numbers for the small model). A training step is then one `session.run` that feeds the batch
and fetches the loss, the gradient norm and the state update — which pull in everything else:"""

RUN_STEP_CODE = """\
show_source(tf_graph.TFGraphEngine.train_step)"""

OPS = r"""The real graph of the tiny model (2 layers of 16 units, 5 steps), by operation type. The
forward pass has 13 products (the recurrent one at each of 5 steps in each of 2 layers, one input
projection per layer, the softmax), and the backward pass two per product (one for each input:
`tf.gradients` adds both, and the one towards the carried-in state, which nothing needs, never
runs), 39 `MatMul` in all; `Sigmoid` and `Tanh` count 3 and 2 per step and layer, and `SigmoidGrad` and
`TanhGrad` are their derivatives in the backward pass; `AddN` sums the gradients of a tensor
used more than once:"""

OPS_CODE = """\
import collections
from ptb_lstm.params import init_params, param_shapes
tiny = PRESETS["tiny"]
engine = tf_graph.TFGraphEngine(tiny, init_params(tiny, corpus.vocab_size))
ops = engine.graph.get_operations()
print(f"{len(ops)} operations in the graph")
for kind, n in collections.Counter(op.type for op in ops).most_common(12):
    print(f"{n:6}  {kind}")"""

PICTURE = r"""A picture of a small graph: the forward pass of one LSTM layer of 2 units over one time step,
built by the same `_tf_model.forward` (placeholders in blue, variables in green; each
column holds the operations whose inputs are all to their left):"""

PICTURE_CODE = """\
small = PRESETS["tiny"].replace(num_layers=1, hidden_size=2, num_steps=1, batch_size=1)
picture = tf.Graph()
with picture.as_default():
    params = {n: tf.Variable(tf.zeros(s), name=n) for n, s in param_shapes(small, 5).items()}
    inputs = v1.placeholder(tf.int32, [1, 1], "word_ids")
    state = [(v1.placeholder(tf.float32, [1, 2], "h_in"), v1.placeholder(tf.float32, [1, 2], "c_in"))]
    logits, final = _tf_model.forward(params, inputs, state, small)

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

keep, todo = set(), [logits.op, final[0][0].op, final[0][1].op]
while todo:  # the ancestors of the outputs
    op = todo.pop()
    if op not in keep:
        keep.add(op); todo.extend(t.op for t in op.inputs)
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
where = {op: (d, 1.2 * (len(col) / 2 - k)) for d, col in columns.items() for k, op in enumerate(col)}
label = lambda op: op.name.replace("lstm_0_", "").replace("_", "\\n") if op.type in leaves else op.type
fig, ax = plt.subplots(figsize=(15, 5.5))
for op in nodes:
    for source in sources(op):
        ax.annotate("", where[op], where[source], arrowprops=dict(arrowstyle="->", color="grey", lw=0.7, shrinkA=14, shrinkB=14))
for op, (px, py) in where.items():
    color = "#cfe0f5" if op.type == "Placeholder" else "#d9f0d3" if op.type == "VarHandleOp" else "#fde2c4"
    ax.text(px, py, label(op), ha="center", va="center", fontsize=7, bbox=dict(boxstyle="round", fc=color, ec="grey"))
ax.set_xlim(-0.7, max(depth.values()) + 0.7)
ax.set_ylim(min(y for _, y in where.values()) - 0.8, max(y for _, y in where.values()) + 0.8)
ax.axis("off"); ax.set_title(f"one LSTM step as a dataflow graph: {len(nodes)} operations")
plt.show()"""

THREE_AGREE = r"""## The same agreement check

As in Part II: five training steps of the tiny model from the same weights on the same batches,
the largest relative differences against the `numpy` engine, within 1e-9 in float64 and 1e-4 in
float32."""

THREE_RUN = r"""## A short run on PTB

As in Part II, the seconds count the steps, the valid pass and the set-up, measured live: no
benchmark."""

THREE_RESULTS = r"""## The three engines' full runs

Each engine trained the small config for 13 epochs from the same seeded weights on 2 CPU cores
(`make reproduce`; the commands are in each run's `config.json` in `docs/results/`). Train is
the last epoch's mean training perplexity; valid and test are at the training batch shape
(20 × 20), test 1x1 evaluates one word at a time. The engines agree step by step to float
tolerance; over 30,199 steps of SGD their float32 rounding differences grow until the runs are
different samples of the same training, so their final figures differ by run-to-run
variation, not by what they compute. That holds for the two TensorFlow engines as well. Over
the five tiny steps above they print the same differences from `numpy`, but they run the same
operations through different runtimes (the graph's is rewritten and scheduled as a whole), and
on the small model their five-step float32 parameters already lie 1.54e-5 and 1.53e-5 from
`numpy`'s, not at one distance (`docs/agreement.md`); their full runs, from the same weights,
ended 2.2 apart in valid perplexity. The short runs of Parts II and III, from the same weights
too, already end at slightly different valid perplexities after 100 steps. The paper's small model: valid 120.7, test 114.5."""

THREE_FIGURE = r"""Their learning curves, as `make reproduce` draws them with `ptb-lstm plot`:"""

THREE_FIGURE_CODE = """\
from IPython.display import Image
figure = REPO / "docs" / "figures" / "results-curves.png"
display(Image(filename=str(figure))) if figure.is_file() else print("no figure yet: run make reproduce")"""


def part_three() -> list:
    return [
        md(THREE_INTRO), code(SETUP.format(steps=100)), code(IMPORT_TF),
        md(TOY), code(TOY_CODE), md(CONTROL), code(CONTROL_CODE),
        md(ENGINE_GRAPH), code(ENGINE_GRAPH_CODE), md(RUN_STEP), code(RUN_STEP_CODE),
        md(OPS), code(OPS_CODE), md(PICTURE),
        code("from ptb_lstm.engines import _tf_model\n" + PICTURE_CODE, figure="notebook3-graph"),
        md(THREE_AGREE), code(agreement_cell("tf-graph")),
        md(THREE_RUN), code(SHORT_RUN.format(engine="tf-graph")),
        code(CURVE.format(title="small config, TensorFlow graph engine, first steps"),
             figure="notebook3-curve"),
        md(THREE_RESULTS), code(RESULTS + '\nresults_table(["numpy", "tf-eager", "tf-graph"], published=False)'),
        md(THREE_FIGURE), code(THREE_FIGURE_CODE),
    ]
