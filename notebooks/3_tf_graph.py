# %% [markdown]
# # Part III — the same model as a TensorFlow graph run in a session
#
# In **graph execution** a program first *describes* the computation and only then runs it. Each
# TensorFlow call adds an operation (a node) to a dataflow graph, whose edges are the tensors
# flowing between operations; nothing is computed while the graph is built. A `Session` then runs
# the part of the graph needed for what it is asked to *fetch*, with values *fed* into
# placeholders. The toolkit's `tf-graph` engine (`ptb_lstm/engines/tf_graph.py`) builds its graph
# with `tf.compat.v1` (TensorFlow 1's API, where `Session` and `placeholder` still live) once
# and runs it step by step. Graph building is local: only code inside
# a `with graph.as_default():` block adds to that graph, and eager execution stays on for the
# rest of the process.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log, if it loads
import inspect
import json
import pathlib
import time

import matplotlib.pyplot as plt
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
# ## A toy graph first
#
# $y = w x + 1$, its derivative, and an update, as a graph. Building it prints no numbers — `y` is
# a symbolic tensor with a shape and a type (`y:0`, output 0 of the operation `y`); the session
# computes. In the list of operations, a variable is a handle (`w`) with its initializer and
# assignment (`w/Initializer/...`, `w/Assign`); every use of it adds a `ReadVariableOp`; the
# constants 1.0 and 0.1 are nodes too (`y/y`, `mul_1/x`); `mul_1` and `AssignSubVariableOp` are
# the update.

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

# %% [markdown]
# **Control dependencies.** A session runs only what a fetch needs, in any order the
# dependencies allow. An operation whose output no fetched operation needs never runs: the SGD
# updates of a training step, for example. `tf.control_dependencies` makes one
# operation wait for others it does not read, so that fetching it runs them too. (An order that a
# data edge already fixes needs no such edge: a value computed from a read comes after the
# read.)

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
# ## How the engine builds its graph
#
# `_Unrolled` adds the operations of one training (or evaluation) step to the engine's graph:
# placeholders for the word ids, the targets and (with dropout) the masks; the state read from
# state *variables*, so that it is carried from one `session.run` to the next inside the session;
# the same `_tf_model.forward` as Part II; `tf.gradients` (`v1.gradients`) in place of the tape,
# which adds the backward pass to the graph as more operations; the same `clipped_sgd`; and
# `_store_state`, which writes the final state into the state variables under a control
# dependency on the loss and the updates: `train_step` fetches it, and through that dependency
# the SGD updates run, which nothing else it fetches reads. (`tf.group` makes one operation of
# several.)
#
# The graph is **unrolled**: the Python loop over time steps in `_tf_model.forward` runs once,
# while the graph is built, and leaves T copies of the step's operations in the graph. So each
# batch shape (rows × steps) needs its own set of operations in the engine's graph, one
# `_Unrolled` per shape, built when first needed: training at 20 × 20 and evaluating at 1 × 1
# are two. The learning rate is a variable, set by a small assign
# operation (`_set_lr`) when it changes: a Python float would be frozen into the graph as a
# constant.

# %%
from ptb_lstm.engines import tf_graph

show_source(tf_graph._StateVariables)
show_source(tf_graph._Unrolled)
show_source(tf_graph._store_state)

# %% [markdown]
# The weights are variables too, created in `TFGraphEngine.__init__` with a placeholder and an
# assign operation to load them (given as initial values, they would be stored in the graph as
# constants: 4.65 million numbers for the small model). A training step is then one `session.run`
# that feeds the batch and fetches the loss, the gradient norm and the state update — which pull in
# everything else:

# %%
show_source(tf_graph.TFGraphEngine.train_step)

# %% [markdown]
# The real graph of the tiny model (2 layers of 16 units, 5 steps), by operation type. The
# forward pass has 13 products (the recurrent one at each of 5 steps in each of 2 layers, one input
# projection per layer, the softmax), and the backward pass two per product (one for each input:
# `tf.gradients` adds both, and the one towards the carried-in state, which nothing needs, never
# runs), 39 `MatMul` in all; `Sigmoid` and `Tanh` count 3 and 2 per step and layer, and
# `SigmoidGrad` and `TanhGrad` are their derivatives in the backward pass; `AddN` sums the gradients
# of a tensor used more than once:

# %%
import collections

from ptb_lstm.params import init_params, param_shapes

tiny = PRESETS["tiny"]
engine = tf_graph.TFGraphEngine(tiny, init_params(tiny, corpus.vocab_size))
ops = engine.graph.get_operations()
print(f"{len(ops)} operations in the graph")
for kind, n in collections.Counter(op.type for op in ops).most_common(12):
    print(f"{n:6}  {kind}")

# %% [markdown]
# A picture of a small graph: the forward pass of one LSTM layer of 2 units over one time step,
# built by the same `_tf_model.forward` (placeholders in blue, variables in green; each
# column holds the operations whose inputs are all to their left):

# %% figure="notebook3-graph"
from ptb_lstm.engines import _tf_model

small = PRESETS["tiny"].replace(num_layers=1, hidden_size=2, num_steps=1, batch_size=1)
picture = tf.Graph()
with picture.as_default():
    params = {n: tf.Variable(tf.zeros(s), name=n) for n, s in param_shapes(small, 5).items()}
    inputs = v1.placeholder(tf.int32, [1, 1], "word_ids")
    state = [
        (v1.placeholder(tf.float32, [1, 2], "h_in"), v1.placeholder(tf.float32, [1, 2], "c_in"))
    ]
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
# ## The same agreement check
#
# As in Part II: five training steps of the tiny model from the same weights on the same batches,
# the largest relative differences against the `numpy` engine, within 1e-9 in float64 and 1e-4 in
# float32.

# %%
from ptb_lstm.agreement import compare

rows = [
    row
    for dtype in ("float64", "float32")
    for row in compare(["tf-graph"], PRESETS["tiny"], corpus, dtype, steps=5)
]
print(f"{'engine':<16} {'dtype':<8} {'losses':>9} {'params':>9} {'valid ppl':>10}")
for r in rows:
    print(f"{r.engine:<16} {r.dtype:<8} {r.loss:>9.2e} {r.params:>9.2e} {r.perplexity:>10.2e}")
assert all(max(r.loss, r.params) <= (1e-9 if r.dtype == "float64" else 1e-4) for r in rows)

# %% [markdown]
# ## A short run on PTB
#
# As in Part II, the seconds count the steps, the valid pass and the set-up, measured live: no
# benchmark.

# %%
import tempfile

from ptb_lstm.engines import create_engine
from ptb_lstm.metrics import read_metrics
from ptb_lstm.params import init_params
from ptb_lstm.train import train

config = PRESETS["small"]
engine = create_engine("tf-graph", config, init_params(config, corpus.vocab_size))
out = tempfile.mkdtemp(prefix="ptb-lstm-notebook-")
started = time.perf_counter()
result = train(config, corpus, engine, out, max_steps=STEPS, log_every=10)
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
# ## The three engines' full runs
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
