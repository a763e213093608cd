# %% [markdown]
# # Part II — the same model with TensorFlow eager execution
#
# Part I wrote every derivative by hand. Here TensorFlow computes them: in **eager execution**
# each TensorFlow operation runs as soon as Python reaches it and returns a value, as NumPy does,
# and a `tf.GradientTape` records the operations run inside it so that it can play them backwards
# — back-propagation done by the library, for any computation. The toolkit's `tf-eager` engine
# (`ptb_lstm/engines/tf_eager.py`) holds the same parameters as the NumPy engines, under the same
# names and layout, and computes the same function.

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
# ## GradientTape in a few lines
#
# $y = \sigma(w x)$ at $w = 0.7$, $x = 2$. By hand (Part I, step 7 and the chain rule):
# $\partial y/\partial w = \sigma(wx)\,(1 - \sigma(wx))\,x$.

# %%
w, x = tf.Variable(0.7, dtype=tf.float64), tf.constant(2.0, tf.float64)
with tf.GradientTape() as tape:  # records the operations on watched values: trainable
    # variables are watched by themselves, a constant needs tape.watch
    y = tf.sigmoid(w * x)  # runs now: y is a value
by_tape = tape.gradient(y, w)  # the record played backwards
by_hand = tf.sigmoid(w * x) * (1 - tf.sigmoid(w * x)) * x
print(f"y = {float(y):.6f}; dy/dw by the tape {float(by_tape):.12f}, by hand {float(by_hand):.12f}")
assert abs(float(by_tape) - float(by_hand)) < 1e-15

# %% [markdown]
# ## The model in TensorFlow operations
#
# The TensorFlow engines share one function, `_tf_model.forward`, that writes the model with
# TensorFlow operations. Read it beside the reference engine of Part I:
#
# | equation | reference engine (NumPy, Part I) | `_tf_model.forward` |
# |---|---|---|
# | $x_t = E[w_t]$ | `x = p["embedding"][ids]` | `x = tf.nn.embedding_lookup(params["embedding"], ids)` |
# | dropout | `x = x * masks[0]` | `x = x * masks[layer]` |
# | $x_t W + b$ | inside the loop, `x[t] @ W + ... + b` | once for all steps: `tf.matmul(tf.reshape(x, [-1, hidden]), kernel) + bias` |
# | $z_t = \ldots + h_{t-1} U$ | `h[t] @ U` | `projected[t] + tf.matmul(h, recurrent)` |
# | i, f, g, o | `sigmoid(z[:, 0 * H:1 * H])`, ... | `z_i, z_f, z_g, z_o = tf.split(z, 4, axis=1)` |
# | $c_t = f \odot c_{t-1} + i \odot g$ | `c[t + 1] = f[t] * c[t] + i[t] * g[t]` | `c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_g)` |
# | $h_t = o \odot \tanh c_t$ | `h[t + 1] = o[t] * np.tanh(c[t + 1])` | `h = tf.sigmoid(z_o) * tf.tanh(c)` |
# | $y = h W_s + b_s$ | `x @ p["softmax_kernel"] + p["softmax_bias"]` | `tf.matmul(..., params["softmax_kernel"]) + params["softmax_bias"]` |
# | $-\log p[w_{t+1}]$ | `log_softmax`, `nll` | `tf.nn.sparse_softmax_cross_entropy_with_logits` |
#
# There is no backward pass to write: everything after the loss is `tape.gradient`.

# %%
from ptb_lstm.engines import _tf_model

show_source(_tf_model.forward)
show_source(_tf_model.summed_nll)

# %% [markdown]
# ## One training step
#
# The engine's `train_step`: the forward pass and the loss (summed over time, averaged over the
# batch, as in Part I (d)) run inside the tape; `tape.gradient` returns the gradient of every
# variable; clipping and SGD follow (below). No `tf.function` wraps it (`tf.function` would trace
# the Python code into a graph once, the way Part III builds one): every operation runs eagerly,
# one Python call at a time (`tf.device` places them on the CPU or a GPU). The carried state enters
# the tape as a plain value, computed by the previous step outside this tape, so the gradient stops
# at the batch boundary: truncated BPTT (Part I (e)) comes for free.

# %%
from ptb_lstm.engines.tf_eager import TFEagerEngine

show_source(TFEagerEngine.train_step)

# %% [markdown]
# ## The embedding's gradient arrives as `IndexedSlices`
#
# The embedding lookup reads only the rows of the batch's words, so the gradient of $E$ is zero
# everywhere else (Part I, step 9). Instead of a dense [10,000, 200] array the tape returns a
# `tf.IndexedSlices`: the list of row indices the lookup read, one per position (repeats
# included), and the gradient row of each. Turned into a dense array, repeated indices add up —
# the reference engine's scatter-add `np.add.at`. A small example, with a word (row 1) used twice:

# %%
E = tf.Variable(np.arange(12.0).reshape(6, 2))  # a 6-word embedding of width 2
ids = tf.constant([1, 4, 1])
upstream = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], tf.float64)  # some dL/dx per position
with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.nn.embedding_lookup(E, ids) * upstream)
grad = tape.gradient(loss, E)
print(type(grad).__name__, "indices", grad.indices.numpy(), "values", grad.values.numpy().tolist())
dense = np.zeros((6, 2))
np.add.at(dense, ids.numpy(), upstream.numpy())  # the reference's way
assert (tf.convert_to_tensor(grad).numpy() == dense).all()
print("as a dense gradient (row 1 = [1, 2] + [5, 6]):\n", dense)

# %% [markdown]
# Two things follow. **The norm**: $\lVert[1,2]\rVert^2 + \lVert[5,6]\rVert^2$ is not
# $\lVert[6,8]\rVert^2$, so the norm used for clipping must be taken after the repeated rows are
# summed, or the TensorFlow engines would clip differently from the NumPy ones (a norm such as
# `tf.linalg.global_norm` squares an `IndexedSlices`' values as they are, repeated rows
# unmerged); `sum_duplicate_rows` does that: `tf.unique` gives the distinct rows and, for each
# position, the index of its row among them, and `tf.math.unsorted_segment_sum` adds up the
# values that share an index. **The update**:
# `variable.scatter_sub` subtracts the clipped, scaled rows from only those rows of the
# variable, leaving every other row untouched, as the `numpy` engine's sparse update does.

# %%
merged = _tf_model.sum_duplicate_rows(grad)
print("merged: indices", merged.indices.numpy(), "values", merged.values.numpy().tolist())
E.scatter_sub(tf.IndexedSlices(0.5 * merged.values, merged.indices))
print("E after a step of 0.5 on rows 1 and 4 only:\n", E.numpy())
show_source(_tf_model.sum_duplicate_rows)
show_source(_tf_model.clipped_sgd)

# %% [markdown]
# ## Does it compute the same function?
#
# Same seeded weights, same PTB batches, five training steps each (the learning rate halved
# after the third), then the largest relative differences, against the `numpy` engine, of the
# per-step losses, of every parameter and of the valid perplexity, on the tiny model so that it
# runs in seconds. The reference engine of Part I is in the table too: all three compute one
# function, to rounding.

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
# ## A short run on PTB
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
# ## The full run
#
# Eager execution pays Python's and TensorFlow's dispatch cost for every one of the many small
# operations of a step (Part III counts 719 operations in the graph of the tiny model, 5 time
# steps, constants and set-up included; the small config unrolls 20); on 2 CPU cores the 13
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
# Part III describes the same computation once, as a graph, and runs it in a session.
