# %% [markdown]
# # Part I — an LSTM language model in plain NumPy, from first principles
#
# This notebook builds, piece by piece, the word-level language model of Zaremba, Sutskever &
# Vinyals, *Recurrent Neural Network Regularization* (2015), in its "small" form: two LSTM layers
# of 200 units trained on the Penn Treebank (PTB) to predict the next word. By the end you can
# write one training step by hand: the forward pass with dropout, the loss, back-propagation
# through time (BPTT), gradient clipping and the SGD update. Nothing in that code depends on the
# sizes, so one written for the small model runs unchanged on any other. Two exercises check it
# against the engine: the backward pass in (e), the whole step in (g). Their checks run on the
# `tiny` config (H = 16; the check of (e) shrinks it to H = 5 and 11 words), where every check
# takes seconds; (g) then writes the whole step as one pure function, for any number of layers, and
# checks it on the tiny config and on the small config's own shapes (H = 200, T = 20, B = 20,
# V = 10,000); (l) has three more exercises, each with a cell that checks your answer.
#
# The code shown is the toolkit's **reference engine**, `ptb_lstm/engines/numpy_reference.py`
# (`--engine numpy-reference` on the command line): the whole model in about 250 lines of plain
# NumPy, one time step at a time, each equation beside the line that computes it. The notebook
# imports it and prints its source; nothing of the model is re-implemented here (a few cells write
# a piece out by hand only to check it against the engine). Section (i) shows how the fast
# `numpy` engine differs from it, and checks that both compute the same numbers.
#
# Contents: (a) the data · (b) the model · (c) the forward pass · (d) the loss and perplexity ·
# (e) BPTT derived · (f) the gradient check · (g) clipping, SGD, the learning-rate schedule and
# the whole training step, as the engine runs it and as one pure function · (h) a short training
# run · (i) making it fast · (j) the full results · (k) beyond SGD: Adam and AMSGrad, and the
# counterexample where Adam fails · (l) exercises · (m) their solutions.

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


# %% [markdown]
# ## (a) The data: tokens, vocabulary, ids and stream folding
#
# PTB comes as three text files (train, valid, test) with one sentence per line, already
# lower-cased, numbers replaced by `N` and rare words by `<unk>`. The toolkit reads each line's
# whitespace-separated words and appends the end-of-sentence token `<eos>`, so the whole split
# becomes one long stream of tokens:

# %%
from ptb_lstm.data import EOS, read_words

train_file = corpus.data_dir / "ptb.train.txt"
print("first two lines of ptb.train.txt:")
for line in train_file.read_text().splitlines()[:2]:
    print("   ", line.strip())
words = read_words(train_file)
print("as tokens:", words[:30], "...")
print(f"{len(words):,} training tokens, {words.count(EOS):,} of them {EOS}")

# %% [markdown]
# The vocabulary is the sorted list of the distinct training tokens, and a word's **id** is its
# position in that list. `<unk>` is an ordinary word of the vocabulary; PTB's valid and test
# splits contain no word that train lacks (the cell checks it). The model only ever sees ids:

# %%
vocab = corpus.vocab
print(f"{len(vocab):,} words; the first ten:", vocab[:10])
print(
    "ids of",
    ["<eos>", "<unk>", "the", "stock"],
    "=",
    [vocab.index(w) for w in ["<eos>", "<unk>", "the", "stock"]],
)
print("the training stream as ids:", corpus.train[:12], "...")
assert [vocab[i] for i in corpus.train[:12]] == words[:12]
for split in ("valid", "test"):
    unseen = set(read_words(corpus.data_dir / f"ptb.{split}.txt")) - set(vocab)
    print(f"words of ptb.{split}.txt that train lacks: {len(unseen)}")

# %% [markdown]
# ### Stream folding, on a tiny example
#
# Training feeds the model a batch of `batch_size` sequences of `num_steps` tokens at a time,
# and the target of every token is the token that follows it. PTB's batches come from
# **stream folding**: cut the stream of N ids into
# `batch_size` equal rows, each one contiguous piece of text, and walk along the rows
# `num_steps` columns at a time. With
#
# $$\text{steps} = \left\lfloor \frac{N - 1}{\text{batch\_size}\cdot\text{num\_steps}}
# \right\rfloor,
# \qquad \text{used} = \text{steps}\cdot\text{batch\_size}\cdot\text{num\_steps},$$
#
# the inputs are `ids[:used]` and the targets `ids[1:used+1]`, each reshaped to
# `[batch_size, steps * num_steps]`; step s takes columns `s*num_steps` to `(s+1)*num_steps - 1`.
# Here is a stream of N = 26 tokens, numbered 0 to 25 so that you can follow them, folded with
# `batch_size = 3` and `num_steps = 4`: steps = 25 // 12 = 2, so 24 tokens are used and the last two
# are dropped.

# %%
from ptb_lstm.data import batches

stream = np.arange(26)
for s, (inputs, targets) in enumerate(batches(stream, batch_size=3, num_steps=4)):
    print(f"step {s}: inputs\n{inputs}\n        targets\n{targets}\n")


# %% figure="notebook1-folding"
def draw_folding(n=26, batch_size=3, num_steps=4):
    steps = (n - 1) // (batch_size * num_steps)
    width = steps * num_steps
    colors = plt.cm.Pastel1(np.arange(batch_size))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.2), height_ratios=[1, 2.2])
    for k in range(n):  # the stream, coloured by the row it goes to
        row = k // width if k < batch_size * width else None
        top.add_patch(
            plt.Rectangle((k, 0), 1, 1, fc=colors[row] if row is not None else "white", ec="grey")
        )
        top.text(k + 0.5, 0.5, str(k), ha="center", va="center", fontsize=8)
    top.set_xlim(0, n)
    top.set_ylim(-0.2, 1.6)
    top.axis("off")
    top.set_title(
        f"the stream of {n} tokens, cut into {batch_size} rows (the last {n - batch_size * width} "
        "unused)",
        fontsize=10,
    )
    for b in range(batch_size):  # the folded inputs: row b is one contiguous piece
        for c in range(width):
            bottom.add_patch(plt.Rectangle((c, batch_size - 1 - b), 1, 1, fc=colors[b], ec="grey"))
            bottom.text(
                c + 0.5,
                batch_size - 0.5 - b,
                str(b * width + c),
                ha="center",
                va="center",
                fontsize=9,
            )
    for s in range(1, steps):
        bottom.axvline(s * num_steps, color="black", lw=2.5)
    for s in range(steps):
        bottom.text(
            s * num_steps + num_steps / 2,
            batch_size + 0.25,
            f"step {s}: a [{batch_size}, {num_steps}] batch",
            ha="center",
        )
    bottom.set_xlim(0, width)
    bottom.set_ylim(-0.1, batch_size + 0.7)
    bottom.axis("off")
    bottom.set_title(
        "the inputs [batch_size, steps * num_steps]; the targets are the same picture shifted by "
        "one token",
        fontsize=10,
        y=-0.12,
    )
    plt.tight_layout()
    plt.show()


draw_folding()

# %% [markdown]
# Row b of step s + 1 continues row b of step s: token 4 follows token 3, token 12 follows 11.
# That is why the LSTM's state (its memory, h and c below) at the end of one batch is the right
# starting state for the next batch: it summarises exactly the text that precedes each row. The
# trainer carries it from batch to batch through an epoch and resets it to zeros at the start of
# every epoch and of every evaluation. (The gradient does not follow it across the boundary:
# section (e).) The trainer evaluates only after an epoch's last batch, so an evaluation never
# interrupts a carried state that training still needs: the next epoch starts from zeros anyway.
# (The trainer is `ptb_lstm.train.train`, behind `ptb-lstm train`; section (h) runs its loop by
# hand.) On PTB with the small config:

# %%
config = PRESETS["small"]
(x0, _), (x1, _) = list(batches(stream, 3, 4))
assert (x1[:, 0] == x0[:, -1] + 1).all()  # every row goes on where it stopped
from ptb_lstm.data import num_batches

n = len(corpus.train)
print(
    f"N = {n:,} tokens, batch {config.batch_size} x {config.num_steps} steps: "
    f"{num_batches(n, config.batch_size, config.num_steps):,} steps per epoch; "
    f"each of the {config.batch_size} rows is "
    f"{num_batches(n, config.batch_size, config.num_steps) * config.num_steps:,} "
    "tokens of contiguous text"
)

# %% [markdown]
# ## (b) The model
#
# Let $w_t$ be the id of the word at time t in one row of the batch. Time is counted from 0
# throughout: a batch covers $t = 0, \dots, T-1$ (T = `num_steps`), and the state carried in from
# the previous batch is $(h_{-1}, c_{-1})$. The code stores it as row 0 of arrays of T + 1 rows, so
# that `h[t]` holds $h_{t-1}$ and `h[t + 1]` holds $h_t$ (the same for `c`); section (c) lists
# every such convention, and (e) says which row each gradient reads.
# The model reads $w_t$ and outputs a probability for every word of the vocabulary being $w_{t+1}$.
# There are L = 2 LSTM layers, numbered from 0 as in the parameter names: the paper's "layer 1"
# is `lstm_0` here and its "layer 2" is `lstm_1`. A superscript $(l)$ names the layer where it
# matters; inside one layer it is dropped.
#
# 1. **Embedding**: $e_t = E[w_t]$, row $w_t$ of a matrix $E$ [V, H] (V = 10,000 words,
#    H = 200): a learnt vector per word. The embedding width is the hidden size H, so every
#    layer's input has H columns and `lstm_0_kernel` is [H, 4H], the same shape as
#    `lstm_1_kernel`. The input of layer 0 is the embedding after dropout (below):
#    $x^{(0)}_t = m^{(0)}_t \odot e_t$.
# 2. **Two LSTM layers**. Layer $l$ keeps a hidden output $h_t$ and a cell $c_t$ (each [H]) and
#    at each time step computes, from its input $x_t = x^{(l)}_t$ and its own previous $h_{t-1}$:
#    $$z_t = x_t W + h_{t-1} U + b \qquad [4H]$$
#    $$i_t = \sigma(z_t^{(i)}),\quad f_t = \sigma(z_t^{(f)}),\quad g_t = \tanh(z_t^{(g)}),\quad
#    o_t = \sigma(z_t^{(o)})$$
#    $$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)$$
#    $z$ is cut into four blocks of H in the order i, f, g, o: the *input gate* i says how
#    much of the candidate $g$ enters the cell, the *forget gate* f how much of the old cell is
#    kept, the *output gate* o how much of the cell is shown as $h$. $\sigma(z) = 1/(1+e^{-z})$
#    lies in (0, 1); $\odot$ multiplies element by element. W = `kernel` [H, 4H],
#    U = `recurrent_kernel` [H, 4H], b = `bias` [4H]. The input of the next layer is this
#    layer's output after dropout: $x^{(l+1)}_t = m^{(l+1)}_t \odot h^{(l)}_t$.
# 3. **Softmax**: the top layer's output after dropout, $x^{(L)}_t = m^{(L)}_t \odot h^{(L-1)}_t$
#    (the engine calls it `top`), gives V scores, the *logits*,
#    $$y_t = (m^{(L)}_t \odot h^{(L-1)}_t)\, W_s + b_s = x^{(L)}_t W_s + b_s,
#    \qquad p_t = \mathrm{softmax}(y_t),\quad \mathrm{softmax}(y)_v = e^{y_v} / \textstyle\sum_u
#    e^{y_u}.$$
#
# All of it runs on a whole batch at once: $x_t$ is then [B, H], $z_t$ [B, 4H], $p_t$ [B, V].
# Where the batch row matters it is indexed by r (r = 0..B-1): the letter b is the bias.
#
# **Dropout.** Dropout is the paper's regulariser: a large network trained on a corpus this size
# learns the training text by heart (overfits) and predicts new text worse, and dropping random
# units in training, differently at every step, keeps it from relying on any one unit. The
# $m^{(0)}_t, \dots, m^{(L)}_t$ are the L + 1 = 3 *dropout masks*: they
# multiply the non-recurrent connections — the embedding output, the output of `lstm_0` going
# into `lstm_1`, the top output going into the softmax — and never the recurrent
# $h_{t-1} \to h_t$ or $c_{t-1} \to c_t$. Each entry is drawn on its own: 0 (the unit is
# dropped) with probability $\rho$, or $1/(1-\rho)$ (kept) with probability $1-\rho$, where
# $\rho$ is the dropout rate (`config.dropout`; 0.5 for the medium config, 0.65 for the large
# one). Training only: evaluation uses no masks. The small config, `PRESETS["small"]`, has
# $\rho = 0$, no masks at all, and every $m = 1$ in the equations: `step_masks` (below) returns
# `None` for it. So wherever this notebook speaks of a config "with dropout", it means one whose
# `dropout` field was set, to the medium config's 0.5. One of them has a name: the next cell
# defines `small_dropout = PRESETS["small"].replace(dropout=0.5)`, the small model with
# $\rho = 0.5$, and "the small config with dropout" below always means `small_dropout`, while
# "the small config" means `PRESETS["small"]`, without dropout.
# `Config.replace(**changes)` returns a **new** config, the
# old one with the named fields changed and checked like any config's (a dropout of 1.5 is
# refused with a message); it changes nothing in place (a `Config` is a frozen dataclass), so
# `PRESETS["small"]` keeps $\rho = 0$ for every later cell. The cells below use it for every
# variant: the tiny config with dropout, two or three layers, a lowered `max_grad_norm`.
#
# The parameters are initialised uniform in ±`init_scale` (±0.1 for the small config), every
# entry of them: the biases too (one bias [4H] per layer), with no forget-gate offset (some
# implementations start the f block of the bias at +1, so that $f \approx \sigma(1) \approx 0.73$
# from the first step and the cell keeps more of its past; here f starts near
# $\sigma(0) = 0.5$, as in the paper's code). `init_params(config, vocab_size, dtype=np.float32,
# seed=None)` returns them as a dict from name to array. Its third argument is the dtype of the
# arrays, **float32 unless given**: the checks of this notebook pass `np.float64`, where rounding
# is about $10^{-16}$ instead of $10^{-7}$. The values are drawn in float64 and then converted, so
# a float32 and a float64 model of one config start from the same weights (to float32's
# rounding). `seed` defaults to the config's `seed` (1 for every preset), so two calls with one
# config give the same weights. Before drawing, it refuses a model too large for the memory that
# is free:

# %%
from ptb_lstm.params import count_params, init_params, param_shapes

shapes = param_shapes(PRESETS["small"], corpus.vocab_size)
for name, shape in shapes.items():
    print(f"{name:<26} {str(list(shape)):<14} {int(np.prod(shape)):>10,}")
small_params = init_params(PRESETS["small"], corpus.vocab_size)  # float32, the config's seed
print(f"{'in all':<41} {count_params(small_params):>10,}")
as_float64 = init_params(PRESETS["small"], corpus.vocab_size, np.float64)
print(
    f"dtype {small_params['embedding'].dtype} by default, {as_float64['embedding'].dtype} when "
    "asked; the same weights to float32's rounding:",
    all(np.array_equal(small_params[k], as_float64[k].astype(np.float32)) for k in small_params),
)
forget_bias = small_params["lstm_0_bias"][200:400]  # the f block of [i, f, g, o]
print(
    f"lstm_0's forget-gate biases: from {forget_bias.min():+.3f} to {forget_bias.max():+.3f}, "
    f"mean {forget_bias.mean():+.4f} (no offset: uniform in ±0.1 like every entry)"
)
print("\nthe configs (tiny is for checks and tests):")
fields = [
    ("num_layers", "L"),
    ("hidden_size", "H"),
    ("num_steps", "T"),
    ("batch_size", "B"),
    ("init_scale", "init"),
    ("dropout", "dropout"),
    ("max_grad_norm", "clip"),
    ("learning_rate", "lr"),
    ("epochs_at_full_lr", "full lr"),
    ("lr_decay", "decay"),
    ("epochs", "epochs"),
    ("seed", "seed"),
]
print(f"{'':<8}" + "".join(f"{label:>8}" for _, label in fields))
for name, preset in PRESETS.items():
    print(f"{name:<8}" + "".join(f"{getattr(preset, f):>8.4g}" for f, _ in fields))
print("L layers of H units, T steps, B rows; weights uniform in ±init; clip: max_grad_norm;")
print(
    "lr: the learning rate of the first `full lr` epochs, multiplied by `decay` at each epoch after"
)
small_dropout = PRESETS["small"].replace(dropout=0.5)  # the small config with dropout
print(
    f"\nsmall_dropout: the small config with dropout {small_dropout.dropout}, a new config; "
    f"PRESETS['small'].dropout is still {PRESETS['small'].dropout}"
)

# %% [markdown]
# Unrolled over the `num_steps` time steps of one batch, the network is a feed-forward graph: each
# column is one time step, the state flows from left to right, and each layer's state enters
# from the previous batch at the left edge, as $(h_{-1}, c_{-1})$, and leaves for the next batch at
# the right edge. The three connections marked "dropout" are those the masks $m^{(0)}, m^{(1)},
# m^{(2)}$ multiply. Drawn for T = 4 steps, t = 0..3:


# %% figure="notebook1-unrolled"
def draw_unrolled(T=4):
    fig, ax = plt.subplots(figsize=(10, 6.2))
    rows = [
        (0, "$w_t$", "word id"),
        (1, "$e_t=E[w_t]$", "embedding"),
        (2.2, "lstm_0", "LSTM"),
        (3.4, "lstm_1", "LSTM"),
        (4.6, "$p_t$", "softmax"),
        (5.6, "$-\\log p_t[w_{t+1}]$", "loss"),
    ]
    boxes = {
        "word id": "white",
        "embedding": "#dde8f5",
        "LSTM": "#fde2c4",
        "softmax": "#d9f0d3",
        "loss": "#f5d5d5",
    }
    for t in range(T):
        X = 1.6 * t
        for y, label, kind in rows:
            text = label.replace("_t", f"_{t}").replace("{t+1}", f"{t + 1}")
            if kind == "LSTM":
                text = f"{label}\n$h_{t}, c_{t}$"
            ax.text(
                X,
                y,
                text,
                ha="center",
                va="center",
                fontsize=9,
                bbox=dict(boxstyle="round", fc=boxes[kind], ec="grey"),
            )
        masks = ["", "dropout $m^{(0)}$", "dropout $m^{(1)}$", "dropout $m^{(2)}$", ""]
        for (y0, *_), (y1, *_), mask in zip(rows[:-1], rows[1:], masks, strict=True):
            ax.annotate("", (X, y1 - 0.33), (X, y0 + 0.3), arrowprops=dict(arrowstyle="->"))
            if mask and t == 0:
                ax.text(X + 0.08, (y0 + y1) / 2, mask, fontsize=7, color="purple")
        for y in (2.2, 3.4):  # the recurrence: h and c go on to the next time step
            if t < T - 1:
                ax.annotate(
                    "",
                    (X + 1.6 - 0.5, y),
                    (X + 0.5, y),
                    arrowprops=dict(arrowstyle="->", color="tab:red", lw=1.5),
                )
    for y in (2.2, 3.4):
        ax.annotate(
            "", (-0.5, y), (-1.5, y), arrowprops=dict(arrowstyle="->", color="tab:red", ls="--")
        )
        ax.annotate(
            "",
            (1.6 * (T - 1) + 1.5, y),
            (1.6 * (T - 1) + 0.5, y),
            arrowprops=dict(arrowstyle="->", color="tab:red", ls="--"),
        )
    ax.text(
        -1.55,
        2.6,
        "state from the\nprevious batch\n$h_{-1}, c_{-1}$\n(no gradient back)",
        fontsize=8,
        color="tab:red",
        ha="left",
    )
    ax.text(
        1.6 * (T - 1) + 0.6, 2.8, "state to the\nnext batch", fontsize=8, color="tab:red", ha="left"
    )
    ax.text(0.8, 5.95, "target $w_{t+1}$ is the input of the next step", fontsize=8, ha="left")
    ax.set_xlim(-1.7, 1.6 * (T - 1) + 1.7)
    ax.set_ylim(-0.5, 6.3)
    ax.axis("off")
    ax.set_title(
        f"the two-layer LSTM unrolled over {T} time steps, t = 0..{T - 1} (time goes right, layers "
        "go up)"
    )
    plt.show()


draw_unrolled()

# %% [markdown]
# ### L layers instead of two
#
# Every config here has L = 2, and the text is written for it, but nothing in the model fixes L
# (`--set num_layers=3` trains three). With L layers, numbered 0 to L − 1:
#
# * **Parameters**: one kernel, recurrent kernel and bias per layer, `lstm_0_*` to
#   `lstm_{L-1}_*`, each layer's kernel [H, 4H] (every layer's input has H columns); with the
#   embedding and the two softmax arrays, 3L + 3 arrays (9 for two layers, 12 for three).
# * **Forward**: layer l's input is $x^{(l)}_t = m^{(l)}_t \odot h^{(l-1)}_t$ for l ≥ 1 and
#   $m^{(0)}_t \odot e_t$ for l = 0; the softmax reads $x^{(L)}_t = m^{(L)}_t \odot h^{(L-1)}_t$.
# * **Dropout**: L + 1 masks, $m^{(0)}$ to $m^{(L)}$: one on the embedding output, L − 1
#   between layers, one on the top output.
# * **Carried state**: L pairs $(h^{(l)}, c^{(l)})$, each [B, H].
# * **Backward** (section (e)): the same per-layer pass, run for l = L − 1 down to 0; the global
#   norm of (g) runs over all 3L + 3 gradients.
#
# Nothing else changes: the equations inside a layer, the loss, the clipping and the update are
# the same. Section (g) writes the whole step once for any L and checks it with three layers.

# %% [markdown]
# ### Where the dropout masks come from
#
# The engine draws no random numbers: the trainer asks `ptb_lstm.dropout.step_masks(config, step)`
# for the masks of each training step and passes them to `train_step`. For a config with
# dropout it returns L + 1 arrays, one per masked connection in the order $m^{(0)}$ (the
# embedding output), $m^{(1)}, \dots, m^{(L-1)}$ (between layers) and $m^{(L)}$ (the top output).
# Each has the shape of the activations it multiplies, [T, B, H] time-major: a fresh draw (dropped
# or kept) for every time step, batch row and unit, so a unit dropped at time t may be kept at t + 1
# and in the next row. The inverted-dropout scaling is inside the mask: the kept entries are
# $1/(1-\rho)$, not 1, so the expected value of $m \odot h$ is $h$ and evaluation, which uses no
# masks, needs no rescaling. The masks are a function of the config's seed and the 0-based global
# training step only (a counter-based Philox generator keyed by the seed, with the step as its
# counter; such a generator computes its numbers as a function of the key and a counter, so the
# numbers of any step can be drawn directly, without drawing those of the steps before): every
# engine gets the same masks, and a resumed run draws those an uninterrupted run would have drawn.
# For the small config ($\rho = 0$) it returns `None`; the small config with dropout,
# `small_dropout` of (b), gets three masks [20, 20, 200]. For an exercise of
# your own, any uniform generator gives masks of the same statistics,
# `(rng.random((T, B, H)) < 1 - rho) / (1 - rho)` with `rng = np.random.default_rng()`; only the
# engines' agreement needs these exact ones.

# %%
from ptb_lstm.dropout import masks as dropout_masks
from ptb_lstm.dropout import step_masks

show_source(step_masks)
show_source(dropout_masks)
medium = PRESETS["medium"]  # rho = 0.5, H = 650, T = 35, B = 20
step_0 = step_masks(medium, 0)
print(
    f"rho = {medium.dropout}: {len(step_0)} masks of shape {step_0[0].shape} [T, B, H]; values "
    f"{np.unique(step_0[0])}; "
    f"kept fraction {np.mean([np.mean(m > 0) for m in step_0]):.3f}"
)
assert all(
    (a == b).all() for a, b in zip(step_0, step_masks(medium, 0), strict=True)
)  # the same step: the same masks
print(
    "step 1 differs from step 0 in",
    f"{np.mean(step_masks(medium, 1)[0] != step_0[0]):.0%}",
    "of the entries",
)
print("the small config:", step_masks(PRESETS["small"], 0))
print(
    f"the small config with dropout {small_dropout.dropout} (small_dropout):",
    [m.shape for m in step_masks(small_dropout, 0)],
    "[T, B, H]",
)

# %% [markdown]
# **Checking the claims.** If the draws are independent with keep probability $k = 1 - \rho$,
# each mask keeps a share $k$ of its entries, give or take a binomial standard deviation
# $\sqrt{k(1-k)/n}$ for n entries, and two different draws keep the same entry together with
# probability $k^2$ (0.25 here), not $k$ as a reused mask would; a share of "both kept" among n
# pairs has the standard deviation $\sqrt{k^2(1-k^2)/n}$. (A share of n independent yes/no draws,
# each yes with probability q, has mean q and standard deviation $\sqrt{q(1-q)/n}$, and for
# n in the hundreds of thousands it is very nearly normally distributed.) The pairs below compare
# the three places of one step with one another, each even time step with the next (disjoint pairs,
# so the pairs are independent of one another), each even batch row with the next, one training
# step with the next, and another seed; each line gives its share and how many standard
# deviations it lies from the expected value. Honest randomness puts about 19 in 20 such figures
# within 2 standard deviations and nearly all within 3 (one keep rate below lies at 2.6); a reused
# mask lies hundreds away,
# as the last line shows: a mask against itself, the mistake of a graph that hands one mask to
# every place. Such a mask drops the same units at the embedding output, between the layers and at
# the top together, so the noise of the three places is no longer independent and the regulariser
# is not the paper's; it is an easy mistake in a TensorFlow graph, where two dropout ops given the
# same seed draw the same numbers. The test suite asserts the same per engine
# (`tests/test_dropout.py`), and `python benchmarks/studies/dropout_stats.py` repeats the figures
# over many training steps of the medium and large configs.

# %%
k, n = 1 - medium.dropout, step_0[0].size
sd = np.sqrt(k * (1 - k) / n)
print(
    f"keep rate of each place (expected {k}, sd {sd:.4f}): "
    + ", ".join(f"{np.mean(m > 0):.4f} ({(np.mean(m > 0) - k) / sd:+.1f} sd)" for m in step_0)
)
kept = [m > 0 for m in step_0]
next_step, other_seed = (
    step_masks(c, s)[0] > 0 for c, s in ((medium, 1), (medium.replace(seed=2), 0))
)
pairs = [
    ("embedding output / between layers", kept[0], kept[1]),
    ("between layers / top output", kept[1], kept[2]),
    ("time step t / t + 1 (t even)", kept[0][0:-1:2], kept[0][1::2]),
    ("batch row r / r + 1 (r even)", kept[0][:, 0::2], kept[0][:, 1::2]),
    ("training step 0 / step 1", kept[0], next_step),
    ("seed 1 / seed 2", kept[0], other_seed),
    ("a mask / itself (a reused mask)", kept[0], kept[0]),
]
for name, a, b in pairs:
    both, sd = np.mean(a & b), np.sqrt(k * k * (1 - k * k) / a.size)
    print(f"{name:<36} both kept {both:.4f}  ({(both - k * k) / sd:+.1f} sd from {k * k})")

# %% [markdown]
# ## (c) The forward pass
#
# **The code's conventions, in one place.**
#
# * A batch arrives as the stream folding of (a) makes it: `inputs` and `targets`, both
#   [B, T] ints (B = `batch_size` rows, T = `num_steps` columns). The engine works
#   *time-major*: `forward` transposes the inputs (`ids = inputs.T`, kept as `fwd.ids` [T, B]),
#   so that every activation is [T, B, ...] and `x[t]` is the batch's input at time t. `forward`
#   never sees the targets: the loss and the backward pass transpose them (`targets.T`), and
#   so must any code of yours that takes them.
# * `h` and `c` of a layer have T + 1 rows: row 0 is the state carried in, so `h[t]` is
#   $h_{t-1}$ and `h[t + 1]` is $h_t$.
# * A layer's weights: W = `lstm_l_kernel` [H, 4H], U = `lstm_l_recurrent_kernel` [H, 4H],
#   b = `lstm_l_bias` [4H]; rows are vectors ($z = xW + hU + b$), gate blocks in the order
#   i, f, g, o.
# * Dropout masks: a list of L + 1 arrays [T, B, H], index 0 on the embedding output, index
#   l + 1 on the output of layer l (the last one on the input of the softmax); `None` without
#   dropout.
# * The training loss: summed over the T time steps, averaged over the B rows (section (d)).
# * The carried state: the trainer keeps it in the engine (`engine.state`, one (h, c) pair
#   [B, H] per layer), starts it from zeros (`engine.reset_state(B)`; a new engine starts from
#   zeros for the config's batch size) and every `train_step` and `eval_step` replaces it with
#   that batch's final state.
# * The weights: `engine.params`, a dict from the names of (b) to arrays, the engine's own copy
#   (the constructor copies the dict it is given; the cell that shows `forward`'s source
#   checks it, after the listing), in the engine's dtype (`engine.np_dtype`).
# * What else an engine offers code of yours: `engine.config` (its `Config`, with
#   `max_grad_norm`, `dropout` and the shapes), `engine.hidden_size` and `engine.num_layers` (H
#   and L), `engine.np_dtype` (the dtype to make new arrays in: `np.zeros(shape, engine.np_dtype)`),
#   `engine.forward(inputs, state, masks)`, and the static `engine.log_softmax(logits)` and
#   `engine.nll(log_probs, targets_tb)` of (d). `engine.gradients(inputs, targets, state,
#   masks)` of (e) takes the state as an argument and changes neither the weights nor
#   `engine.state`, so a `train_step` after it starts from the same carried state.
# * Copies out and in: `engine.get_params()` returns a **copy** of the weights (a new dict of new
#   arrays, in the engine's dtype) and `engine.get_state()` a **copy** of the carried state (a new
#   list of new (h, c) arrays); changing what they return leaves the engine alone, and the next
#   `train_step` leaves them alone. `engine.params` and `engine.state` are the engine's own: a
#   change to them is a change to the engine. `engine.set_params(params)` and
#   `engine.set_state(state)` replace the engine's with copies of what they are given. (g)
#   uses the copies to hand a pure function arguments that the engine's next step cannot touch;
#   the cell that shows `forward`'s source checks the difference, after the listing.
#
# `ReferenceEngine.forward` computes exactly the equations of (b), for a whole batch, layer by
# layer and one time step at a time. Every line that computes an equation carries it in its
# comment; here they are side by side, read from the engine's own source:

# %%
import re

from ptb_lstm.engines.numpy_reference import ReferenceEngine, sigmoid


def beside(function):
    """The lines of ``function`` that compute an equation, beside the equation in their comment."""
    rows = ["| equation (the comment) | the line that computes it |", "|---|---|"]
    for line in inspect.getsource(function).splitlines():
        text, _, comment = line.partition("  # ")
        shapeless = re.sub(r"^\[[^\]]*\]", "", comment.strip())  # without a leading [shape]
        equation = " ".join(shapeless.split())
        if "=" in equation and text.strip():
            rows.append(f"| `{equation}` | `{text.strip()}` |")
    display(Markdown("\n".join(rows)))


beside(ReferenceEngine.forward)

# %% [markdown]
# And the whole method, with the shapes in its comments. What the backward pass will need
# (every layer's masked input, gates, cells and outputs, and the masked top output) is kept in a
# `Forward` record, one `Layer` per layer:

# %%
from ptb_lstm.engines.numpy_reference import Forward, Layer

show_source(ReferenceEngine.forward)
show_source(Forward)
show_source(Layer)
little = PRESETS["small"].replace(
    hidden_size=8, num_steps=5, batch_size=3
)  # the small config, shrunk
given = init_params(little, corpus.vocab_size, np.float64)
engine = ReferenceEngine(little, given, dtype="float64")
assert (
    engine.params["embedding"] is not given["embedding"]
)  # a copy: training it leaves `given` alone
engine.reset_state(3)
copied_params, copied_state = engine.get_params(), engine.get_state()
copied_params["embedding"] += 1.0  # changes the copies only ...
copied_state[0][0][:] = 1.0
print(
    "get_params() and get_state() return copies: after changing them the engine still has its "
    "own weights and zero state:",
    np.array_equal(engine.params["embedding"], given["embedding"]),
    (engine.state[0][0] == 0).all(),
)
inputs, targets = next(batches(corpus.train, batch_size=3, num_steps=5))
fwd = engine.forward(inputs, engine.state)
print(
    "inputs",
    inputs.shape,
    "[B, T] -> ids",
    fwd.ids.shape,
    "[T, B] -> logits",
    fwd.logits.shape,
    "(time-major: [T, B, V])",
)
print(
    "lstm_0 (fwd.layers[0]) keeps h",
    fwd.layers[0].h.shape,
    "and gates i",
    fwd.layers[0].i.shape,
    "; the final state per layer:",
    [tuple(h.shape) for h, c in fwd.final_state],
)

# %% [markdown]
# **Overflow, and how the engine handles it.** The gates use the engine's `sigmoid`,
# $\sigma(z) = 1/(1+e^{-z})$ written out directly. For a very negative z, $e^{-z}$ overflows to
# `inf` (below about −88.7 in float32, −709.8 in float64); the result is still right, since
# $1/(1+\infty) = 0$ is the limit of $\sigma$. For a very positive z, $e^{-z}$ becomes negligible
# and $\sigma$ rounds to exactly 1. IEEE arithmetic never stops on such a value: an overflow gives
# `inf`, and an *invalid* operation such as $\infty - \infty$ or $0 \cdot \infty$ gives `nan`. What
# NumPy does when it happens is a setting, `np.geterr()`, by default `"warn"` for both: a
# `RuntimeWarning` ("overflow encountered in exp", "invalid value encountered in subtract"), and
# the computation goes on. `np.errstate(over=..., invalid=...)` changes the setting for the
# statements inside its `with` block only, and restores it after: `"ignore"` (no warning),
# `"warn"`, `"raise"` (a `FloatingPointError` at once).
#
# The pre-activations of a healthy model stay far from either end; a diverging run can reach
# them, and its logits can become `inf`, where the log-softmax of (d) subtracts the row's maximum:
# $\infty - \infty$, an invalid operation, `nan`. The engine chooses once where to handle this:
# `train_step` runs `gradients` and the update inside
# `with np.errstate(over="ignore", invalid="ignore"):` (its source is in (g)). A step that
# overflows returns its non-finite loss (its update goes ahead, into non-finite weights) without
# a warning per array, and the trainer, which checks every loss, stops there, naming the step
# and the last good checkpoint. `forward`, `eval_step` and `gradients` called on their own set
# nothing, so they warn. The cell shows the three settings on the sigmoid, and the invalid case:

# %%
import warnings

show_source(sigmoid)
z = np.array([-1000.0, -100.0, -5.0, 0.0, 5.0, 100.0, 1000.0], np.float32)
print("NumPy's setting outside any errstate block:", np.geterr())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    plain = sigmoid(z)  # the default, "warn": a RuntimeWarning, and the computation goes on
print("default ('warn'):    ", [str(w.message) for w in caught])
with np.errstate(over="ignore"):  # inside this block only: overflow is silent
    quiet = sigmoid(z)
print("errstate(over='ignore'): no warning; the same values:", (quiet == plain).all())
try:
    with np.errstate(over="raise"):
        sigmoid(z)
except FloatingPointError as error:
    print("errstate(over='raise'):  FloatingPointError:", error)
print("z          ", z)
print("sigmoid(z) ", quiet, "(float32; exact 0 and 1 at the ends)")
with np.errstate(invalid="ignore"):
    y = np.array([np.inf, 1.0], np.float32)  # a logit row that overflowed
    print("an overflowed logit row, minus its maximum:", y - y.max(), "(inf - inf is nan)")
print("after the blocks, the setting is back:", np.geterr())

# %% [markdown]
# ## (d) The loss and perplexity
#
# The model is trained to give the true next word a high probability. The loss of one position
# is the **cross-entropy** $-\log p_t[w_{t+1}]$, and the loss of one training step (as in the
# paper's code) is its **sum over the T time steps, averaged over the B rows** (r is the batch
# row, t = 0..T-1; the target of the last position, $w_T$, is the first input of the next batch):
#
# $$\mathcal{L} = \frac{1}{B} \sum_{r=0}^{B-1} \sum_{t=0}^{T-1} -\log p_{t,r}[w_{t+1,r}]$$
#
# **Perplexity** is the exponential of the mean cross-entropy per word, over a whole split:
#
# $$\mathrm{PPL} = \exp\Big(\frac{1}{P}\sum_{n=1}^{P} -\log p_n[\text{target}_n]\Big)$$
#
# with $P$ the number of predicted words: a split read in $S$ batches of B × T targets has
# $P = S \cdot B \cdot T$ of them, a few fewer than the N ids of its stream.
#
# A model that knows nothing gives every word probability 1/V: its cross-entropy is $\log V$ per
# word and its perplexity exactly $V$ = **10,000**. A perplexity of 114.5 (the paper's small model
# on the test split) means the model is, on average, as uncertain as if it chose uniformly among
# about 114 words — it has narrowed 10,000 choices down to about a hundred. The reference engine
# never forms $p$ to take its logarithm (a tiny probability would round to zero, and its log to
# $-\infty$): with $\mu$ the row's largest logit it computes
# $\log p_v = (y_v - \mu) - \log \sum_u e^{y_u - \mu}$, the same value, in which no exponential
# can overflow.
#
# **Two loss conventions.** `train_step` returns $\mathcal{L}$ above, summed over time and averaged
# over the batch, because that is the quantity whose gradient the update uses (its scale fixes what
# a learning rate of 1 means). `eval_step` returns the cross-entropy **summed over all B × T
# positions**, because evaluation adds batches up over a whole split and only divides at the end.
# So the perplexities are computed differently from the two:
#
# * training (the trainer's running perplexity over the $S$ steps done so far):
#   $\exp\big(\sum_s \mathcal{L}_s / (S \cdot T)\big)$ — the sum of the returned losses divided by
#   $T$ per step, since each is already a mean over the batch;
# * evaluation (`ptb_lstm.evaluate.evaluate`):
#   $\exp\big(\sum_s \mathrm{NLL}_s / (S \cdot B \cdot T)\big)$, every target token of the split
#   once, with the state carried through the split from zeros.
#
# Both are the mean cross-entropy per token; dividing a training loss by $B \cdot T$ or an
# evaluation sum by $T$ alone would be off by a factor B in the exponent. The cell below does
# both on one batch:

# %%
show_source(ReferenceEngine.log_softmax)
show_source(ReferenceEngine.nll)
config = PRESETS["small"]
engine = ReferenceEngine(config, init_params(config, corpus.vocab_size), dtype="float32")
inputs, targets = next(batches(corpus.train, config.batch_size, config.num_steps))
B, T = inputs.shape
nll = engine.eval_step(inputs, targets)  # summed over the B * T positions
engine.reset_state(B)  # the same batch again, from the same zero state
loss = engine.train_step(
    inputs, targets, learning_rate=0.0
)  # summed over T, averaged over B (rate 0: no update)
print(
    f"eval_step: {nll:,.1f} (sum over {B} x {T} positions); train_step: {loss:.2f} (sum over {T} "
    f"steps, mean over {B} rows)"
)
print(
    f"perplexity from eval_step exp(nll / (B T)) = {np.exp(nll / (B * T)):,.0f}; "
    f"from train_step exp(loss / T) = {np.exp(loss / T):,.0f}"
)
print(
    f"untrained small model on the first batch: {nll / inputs.size:.3f} nats per word (natural-log "
    "units); "
    f"uniform: log V = {np.log(corpus.vocab_size):.3f}, perplexity {corpus.vocab_size:,}"
)
assert np.isclose(nll / (B * T), loss / T, rtol=1e-5)

# %% [markdown]
# ## (e) Back-propagation through time, derived
#
# Training needs $\partial \mathcal{L} / \partial \theta$ for every parameter $\theta$. The unrolled
# network of (b) is a feed-forward graph, so the chain rule applies to it as to any composition of
# functions: go through the graph backwards, and at every node multiply the gradient arriving
# at its output by the node's local derivative. When a value feeds several nodes, the gradients
# coming back from all of them add up. Write $\delta v$ for $\partial \mathcal{L}/\partial v$, the
# gradient of the loss with respect to a value $v$ (of the same shape as $v$).
#
# **Indices and names, fixed before the derivation uses them.**
#
# * *Rows in time.* A layer's `h` and `c` ([T + 1, B, H], from `forward`) have one extra row in
#   front, the carried-in state: `h[0]` is $h_{-1}$, `h[t]` is $h_{t-1}$, `h[t + 1]` is $h_t$, and
#   the same for `c`. The gates `i, f, g, o` and the layer's input `x` ([T, B, H]) have no extra
#   row: `i[t]` is $i_t$, `x[t]` is $x_t$. So at time t the backward loop reads $c_t$ as
#   `c[t + 1]`, $c_{t-1}$ as `c[t]`, $h_{t-1}$ as `h[t]`, and $i_t, f_t, g_t, o_t$ as `i[t]` ...
#   `o[t]`. Step 5 below also has a term $\delta c_{t+1} \odot f_{t+1}$, from the next time
#   step. The iteration for step t does not compute it: the iteration before it (the loop runs
#   backwards), for step t + 1, multiplies its own $\delta c$ by its own forget gate and passes
#   the product down as `dc_next`. So the loop reads only `f[t]`, never `f[t + 1]`.
# * *Gradient names in the code*, each for one quantity only:
#   - `dlogits` [T, B, V]: $\delta y_t$, the logits' gradient;
#   - `dx` [T, B, H]: $\delta x^{(l)}_t$, the gradient with respect to layer l's **masked**
#     input $x^{(l)}_t = m^{(l)}_t \odot h^{(l-1)}_t$ (for l = 0, $m^{(0)}_t \odot e_t$; for
#     l = L, the softmax's input $x^{(L)}_t = m^{(L)}_t \odot h^{(L-1)}_t$). It is not yet the
#     gradient of the unmasked $h^{(l-1)}_t$ below: that one is $m^{(l)}_t \odot \delta x^{(l)}_t$,
#     the next name;
#   - `dh_above` [T, B, H]: $\delta h^{\text{above}}_t = m^{(l+1)}_t \odot \delta x^{(l+1)}_t$,
#     what arrives at layer l's output from above;
#   - `dh`, `dc` [B, H]: $\delta h_t$ and $\delta c_t$, everything that reaches $h_t$ and $c_t$;
#   - `dh_next`, `dc_next` [B, H]: the shares of $\delta h_{t-1}$ and $\delta c_{t-1}$ sent down
#     from step t, used at the loop's next iteration (step t − 1);
#   - `dz` [B, 4H]: $\delta z_t$, the four gate blocks side by side;
#   - `de` [T, B, H]: $\delta e_t = m^{(0)}_t \odot \delta x^{(0)}_t$, the embedding rows' gradient;
#   - `dW`, `dU`, `db`: a layer's parameter gradients, each of its parameter's shape.
#
# **Step 1 — softmax and cross-entropy.** For one position with logits $y$ and target $k$:
# $-\log p_k = -y_k + \log \sum_u e^{y_u}$. Differentiating with respect to $y_j$:
# the first term gives $-1$ when $j = k$; the second gives $e^{y_j}/\sum_u e^{y_u} = p_j$. So
#
# $$\frac{\partial(-\log p_k)}{\partial y_j} = p_j - [j = k], \qquad \delta y = \frac{p -
# \mathrm{onehot}(k)}{B}$$
#
# where $[j = k]$ is 1 when $j = k$ and 0 otherwise (over all $j$, the vector
# $\mathrm{onehot}(k)$), and the $1/B$ comes from the average over the batch in $\mathcal{L}$
# (summing over time adds one such term for each position). Every position (t, r) gets its own
# $\delta y_{t,r}$ [V].
#
# **Step 2 — the softmax layer, and back through the top mask.** $y_t = x^{(L)}_t W_s + b_s$ with
# $x^{(L)}_t = m^{(L)}_t \odot h^{(L-1)}_t$ is linear in $x^{(L)}_t$, and the gradients of a linear
# map (derived in step 8 below) are:
# $\delta W_s = \sum_{t,r} (x^{(L)}_{t,r})^\top \delta y_{t,r}$ (an outer product per position,
# summed), $\delta b_s = \sum_{t,r} \delta y_{t,r}$, and $\delta x^{(L)}_t = \delta y_t W_s^\top$.
# The input in $\delta W_s$ is the **masked** top output $x^{(L)}$, the value that actually entered
# the product (the engine's `top`), not the unmasked $h^{(L-1)}$. A multiplication by a mask,
# $x' = m \odot x$, passes the gradient back multiplied by the same mask,
# $\delta x = m \odot \delta x'$: a dropped unit gets no gradient, a kept one $1/(1-\rho)$ times the
# gradient. So the top LSTM output receives
# $\delta h^{(L-1),\text{above}}_t = m^{(L)}_t \odot \delta y_t W_s^\top$. The masks must be the
# very ones the forward pass used, so the backward pass takes them as arguments.
#
# **Step 3 — where $h_t$ goes.** In one layer $l$, $h_t$ feeds two places: the layer above (or the
# softmax) at time t, through the mask $m^{(l+1)}_t$, and this layer's own
# $z_{t+1} = x_{t+1}W + h_t U + b$. The gradients add:
#
# $$\delta h_t = \delta h_t^{\text{above}} + \delta z_{t+1} U^\top, \qquad
# \delta h_t^{\text{above}} = m^{(l+1)}_t \odot \delta x^{(l+1)}_t$$
#
# where $\delta x^{(l+1)}_t$ is the gradient of the input of the layer above (step 8), or
# $\delta y_t W_s^\top$ for the top layer (step 2). This is why BPTT runs backwards in time:
# $\delta h_t$ needs $\delta z_{t+1}$ first. At the last step of the batch, t = T − 1, nothing of
# this batch's loss comes later, so the terms from step t + 1 are zero: this one, and
# $\delta c_{t+1} \odot f_{t+1}$ in step 5. The engine's code (shown after the exercise) starts each
# layer's loop with both as zeros (`dh_next`, `dc_next`). And the layers can be done one after the
# other, the top one first over all T steps, then the one below: a layer needs from the layer
# above only $\delta x^{(l+1)}_t$ at every t, and nothing ever flows from a lower layer back up.
#
# **Step 4 — the output gate and tanh.** $h_t = o_t \odot \tanh(c_t)$, so
# $\delta o_t = \delta h_t \odot \tanh(c_t)$, and the part of $\delta c_t$ that comes through $h_t$
# is $\delta h_t \odot o_t \odot \tanh'(c_t)$. The derivative of tanh: with
# $\tanh u = (e^u - e^{-u})/(e^u + e^{-u})$, the quotient rule gives
# $\tanh' u = \frac{(e^u + e^{-u})^2 - (e^u - e^{-u})^2}{(e^u + e^{-u})^2} = 1 - \tanh^2 u$,
# which is computed from the value $\tanh u$ the forward pass already has.
#
# **Step 5 — where $c_t$ goes, and why the cell gradient flows back through f.** $c_t$ feeds
# $h_t$ (step 4) and the next cell, $c_{t+1} = f_{t+1} \odot c_t + i_{t+1} \odot g_{t+1}$, whose
# derivative with respect to $c_t$ is just $f_{t+1}$. So
#
# $$\delta c_t = \delta h_t \odot o_t \odot (1 - \tanh^2 c_t) + \delta c_{t+1} \odot f_{t+1}$$
#
# In code, going back in time, the last term is computed one step early: at step $t + 1$ the
# loop stores `dc_next = dc * f` (that step's $\delta c_{t+1} \odot f_{t+1}$), and at step $t$
# adds it.
#
# Along the cell path $c_{t+1} \to c_t$, from one time step to the one before, the cell's
# gradient is multiplied only by the forget gate — element by element, with no weight matrix and
# no squashing derivative in between. (The other share of $\delta c_t$ comes through $\delta h_t$,
# and $\delta h_t$ includes the term $\delta z_{t+1} U^\top$ from the next time step, which passes
# through U and the gate derivatives.)
# Where the network keeps $f \approx 1$ the gradient travels back through many steps without
# shrinking: that is what lets an LSTM learn longer dependencies than a plain RNN, whose
# gradient is multiplied by $U^\top$ and by $\tanh'$ at every step and tends to vanish (the
# classic argument of Hochreiter and Schmidhuber, who introduced the LSTM; Part I does not
# demonstrate it). Near $f \approx 0.5$, where this model starts, the cell path halves the
# gradient at every step; training is free to raise f where a longer memory lowers the loss, and
# the short run of (h) prints how the forget gates move in its first steps.
#
# **Step 6 — the cell update.** $c_t = f_t \odot c_{t-1} + i_t \odot g_t$ gives
# $\delta i_t = \delta c_t \odot g_t$, $\delta f_t = \delta c_t \odot c_{t-1}$,
# $\delta g_t = \delta c_t \odot i_t$.
#
# **Step 7 — through the gate nonlinearities.** The derivative of the sigmoid: with
# $\sigma(z) = (1 + e^{-z})^{-1}$,
# $\sigma'(z) = \frac{e^{-z}}{(1+e^{-z})^2} = \frac{1}{1+e^{-z}}\cdot\frac{e^{-z}}{1+e^{-z}} =
# \sigma(z)\,(1 - \sigma(z))$,
# again from the forward value alone. So
#
# $$\delta z^{(i)} = \delta i \odot i(1-i),\quad \delta z^{(f)} = \delta f \odot f(1-f),\quad
# \delta z^{(g)} = \delta g \odot (1 - g^2),\quad \delta z^{(o)} = \delta o \odot o(1-o)$$
#
# and $\delta z_t$ [B, 4H] is the four blocks side by side, in the order i, f, g, o.
#
# **Step 8 — the linear part.** $z_t = x_t W + h_{t-1} U + b$ for every t with the same W, U, b,
# so their gradients are sums over time and the batch rows r. For one row, $z = xW$ has
# $z_k = \sum_j x_j W_{jk}$, so $\partial z_k/\partial W_{jk} = x_j$ and
# $\partial z_k/\partial x_j = W_{jk}$: $\delta W_{jk} = x_j\, \delta z_k$ (the outer product
# $x^\top \delta z$) and $\delta x_j = \sum_k W_{jk}\, \delta z_k$ (that is, $\delta z\, W^\top$).
# With $x_t$ [B, H] and $\delta z_t$ [B, 4H], the product $x_t^\top \delta z_t$ [H, 4H] already sums
# over the rows (entry (j, k) is $\sum_r x_{t,r,j}\, \delta z_{t,r,k}$), so only the sum over t is
# written:
#
# $$\delta W = \sum_t x_t^\top \delta z_t,\quad \delta U = \sum_t h_{t-1}^\top \delta z_t,\quad
# \delta b = \sum_{t,r} \delta z_{t,r},\quad \delta x_t = \delta z_t W^\top,\quad
# \delta h_{t-1} \mathrel{+}= \delta z_t U^\top$$
#
# The last of these is the second term of step 3, seen from step t. The code keeps it as
# `dh_next = dz @ U.T` and, at the next iteration (t − 1), adds it to what arrives from above:
# `dh = dh_above[t] + dh_next`. The cell's gradient goes down the same way: `dc_next` carries
# $\delta c_{t-1} \mathrel{+}= \delta c_t \odot f_t$, the second term of step 5.
#
# The $x_t$ in $\delta W$ is the layer's **masked** input, $x^{(l)}_t = m^{(l)}_t \odot
# h^{(l-1)}_t$ (or $m^{(0)}_t \odot e_t$ for `lstm_0`): the value the product saw, which the
# forward pass keeps in `Layer.x`. The sums run over t = 0..T-1, so $\delta U$ uses $h_{-1}$, the
# carried-in state, at t = 0. $\delta x_t = \delta z_t W^\top$ is the gradient with respect to
# that masked input; multiplied by the mask, $m^{(l)}_t \odot \delta x_t$, it is the gradient
# with respect to the unmasked output of the layer below, $\delta h_t^{\text{above}}$ there
# (step 3 again, one layer down: before the loop of layer l − 1 the code computes
# `dh_above = dx * masks[l]`), and for `lstm_0` the gradient of the embedding row,
# $\delta e_t = m^{(0)}_t \odot \delta x^{(0)}_t$ (`de = dx * masks[0]`).
#
# **Step 9 — the embedding: a scatter-add.** $e_t = E[w_t]$ copies one row of $E$. Its gradient
# adds $\delta e_{t,r}$ into row $w_{t,r}$ of $\delta E$ for every position; a word that occurs
# several times in the batch collects several contributions, and the rows of words not in the
# batch stay zero: `np.add.at(dE, ids, de)`. (Not `dE[ids] += de`: with repeated indices NumPy's
# fancy-indexed `+=` reads every row once, adds, and writes back, so a word that occurs twice
# keeps only one contribution; `np.add.at` adds them all.)
#
# **Truncation at the batch boundary.** The state carried in from the previous batch,
# $(h_{-1}, c_{-1})$, is treated as a constant: steps 3 to 8 produce $\delta h_{-1}$ and
# $\delta c_{-1}$, and they are dropped instead of being sent into the previous batch. That is a
# choice, made for its cost: sending them on would need the previous batch's activations kept,
# and its backward pass run again, and the one before it, back to the start of the epoch. This
# is *truncated* BPTT: the forward state carries information across the whole epoch, but the
# gradient reaches at most `num_steps` − 1 = 19 steps back (the small config's T = 20: from the
# loss at t = T − 1 to the input at t = 0), and a step keeps only its own batch's
# `Forward` record, the activations of T steps, not of the epoch. (The largest array in it is
# the logits, [T, B, V]: 4 million numbers for the small config.)

# %% [markdown]
# The two derivative identities of steps 4 and 7, checked numerically against central
# differences $(s(u+\epsilon) - s(u-\epsilon))/2\epsilon$:

# %%
u, eps = np.linspace(-6, 6, 121), 1e-6
numeric_sigmoid = (sigmoid(u + eps) - sigmoid(u - eps)) / (2 * eps)
numeric_tanh = (np.tanh(u + eps) - np.tanh(u - eps)) / (2 * eps)
print(
    "max |sigma(1 - sigma) - numeric| = "
    f"{np.abs(sigmoid(u) * (1 - sigmoid(u)) - numeric_sigmoid).max():.1e}"
)
print(f"max |1 - tanh^2      - numeric| = {np.abs(1 - np.tanh(u) ** 2 - numeric_tanh).max():.1e}")

# %% [markdown]
# **Exercise: write the backward pass yourself before reading on.** Steps 1 to 9 are all
# you need. Write a function `my_gradients(engine, inputs, targets, state, masks)` that returns a
# dict from parameter name to gradient (the names of section (b), the embedding's as a dense
# [V, H] array), then call `check_backward(my_gradients)`, and only then read the answer below.
#
# * **What you start from.** `fwd = engine.forward(inputs, state, masks)`. Its record holds
#   `fwd.ids` [T, B], `fwd.top` (the masked top output $x^{(L)}$), `fwd.logits`, and per layer
#   `fwd.layers[l]` with `x` (the masked input $x^{(l)}$), `h` and `c` ([T + 1, B, H], row 0 the
#   carried-in state) and the activated gates `i, f, g, o` ([T, B, H], no extra row). The
#   weights are `engine.params`.
# * **Mind the two indexings.** `layer.h[t]` and `layer.c[t]` are $h_{t-1}$ and $c_{t-1}$, while
#   `layer.f[t]` is $f_t$: so $\delta f_t = \delta c_t \odot c_{t-1}$ reads `c[t]`, and the share
#   $\delta c_t \odot f_t$ that goes down to step t − 1 reads `f[t]`.
# * **The order.** Through the layers from the top one down, and inside each layer from
#   t = T − 1 down to 0, carrying $\delta h$ and $\delta c$ from step t + 1 to step t; multiply by
#   each mask on the way down (`masks` is None without dropout).
# * **Details.** `targets` arrives [B, T] like `inputs`: transpose it. Make new arrays in the
#   engine's dtype (`np.zeros(shape, engine.np_dtype)`; the check runs in float64, where a plain
#   `np.zeros` happens to match). The gradients of the incoming state, $\delta h_{-1}$ and
#   $\delta c_{-1}$, are not part of the answer: they are dropped (the truncation above).
# * **Three NumPy idioms.** `np.exp(engine.log_softmax(fwd.logits))` is p.
#   `a[np.arange(T)[:, None], np.arange(B)[None, :], tt]` with `tt = targets.T` picks entry
#   `tt[t, r]` of the row of every position (t, r), the three index arrays broadcasting to
#   [T, B], and `-=` on it changes just those entries in place (each (t, r) picks one entry, so
#   no entry is picked twice; with repeated indices `-=` and `+=` apply once, see step 9's
#   `np.add.at`). `x @ W` with `x` [T, B, H] and
#   `W` [H, V] multiplies over the last axis for every (t, r), giving [T, B, V]. A sum over all
#   positions of per-position products is one product of the flattened arrays,
#   `x.reshape(T * B, -1).T @ dy.reshape(T * B, -1)`.
# * **Relative error.** One measure compares two arrays everywhere in this notebook. For an
#   array $a$ against a reference $\hat a$ of the same shape,
#   $$\operatorname{err}(a, \hat a) = \frac{\max_k |a_k - \hat a_k|}{\max_k |\hat a_k|},$$
#   the worst entry's difference relative to the reference's largest entry: one number per array
#   (for a scalar, such as a loss, $|a - \hat a| / |\hat a|$). It is `relative_error(got,
#   expected)` below. It is not the difference of each entry divided by that entry: an entry
#   near 0 would make that large for a difference that is only rounding. `relative_error` has no
#   floor: it divides by $\max_k |\hat a_k|$ as it is, which is fine wherever this notebook uses
#   it, since no reference array here is all zeros (it would divide by 0 and give `nan` or
#   `inf`). The gradient check of (f) (`ptb_lstm.gradcheck`) is its own code and uses the measure
#   with a floor: $\max_k |a_k - \hat a_k| / \max(\max_k |\hat a_k|,\ 10^{-6})$, with the
#   analytic gradient as $\hat a$. The floor guards against an all-zero reference: the check runs
#   over every parameter and state array of any config it is given, and a gradient that is
#   exactly zero everywhere would otherwise leave it nothing to divide by; with the floor, such an
#   array passes when its finite differences are at most $10^{-12}$ and fails otherwise.
# * **The check.** The cell below defines `check_backward`. It runs your function on a tiny
#   float64 model (weights in ±0.5, as in the gradient check of (f): larger weights than the small
#   config's make every gradient large enough to compare) with a random incoming state, with
#   dropout 0.5 and without it (masks `None`), and compares every parameter's gradient with the
#   reference engine's. It compares two analytic gradients, which differ only by rounding, so its
#   tolerance is $10^{-9}$ (the finite differences of (f) need a looser one): code that does the
#   same operations in the same order as the engine gets errors of exactly 0, and one that sums
#   in another order about $10^{-16}$.
#
# The rest of a training step, clipping and the update, comes in (g), with a second exercise:
# the whole step.


# %%
def relative_error(got, expected):
    """max |got - expected| / max |expected|: one number per array (or scalar)."""
    expected = np.asarray(expected)
    return float(np.abs(np.asarray(got) - expected).max() / np.abs(expected).max())


def check_backward(my_gradients):
    """Compare my_gradients(engine, inputs, targets, state, masks) -> {name: gradient} with the
    reference engine's gradients on a tiny float64 model (V 11, H 5, T 4, B 3), with dropout 0.5
    and without (masks None)."""
    errors = {}
    for dropout in (0.5, 0.0):
        config = PRESETS["tiny"].replace(
            hidden_size=5, num_steps=4, batch_size=3, init_scale=0.5, dropout=dropout
        )
        engine = ReferenceEngine(config, init_params(config, 11, np.float64), dtype="float64")
        rng = np.random.default_rng(1)
        inputs, targets = rng.integers(0, 11, (2, 3, 4))
        state = [(rng.uniform(-0.5, 0.5, (3, 5)), rng.uniform(-0.5, 0.5, (3, 5))) for _ in range(2)]
        masks = step_masks(config, 0, dtype=np.float64)  # None without dropout
        expected = engine.gradients(inputs, targets, state, masks).params
        got = my_gradients(engine, inputs, targets, state, masks)
        for name, g in expected.items():
            errors[name, dropout] = relative_error(got[name], g)
    print(f"{'relative error':<26} {'dropout 0.5':>12} {'no dropout':>12}")
    for name in expected:
        print(f"{name:<26}" + "".join(f"{errors[name, d]:>12.1e}" for d in (0.5, 0.0)))
    verdicts = []
    for d, label in ((0.5, "with dropout"), (0.0, "without dropout")):
        bad = [name for name in expected if not errors[name, d] < 1e-9]
        if bad:
            verdicts.append(
                f"WRONG {label}: "
                f"{'every gradient' if len(bad) == len(expected) else ', '.join(bad)}"
            )
    print("; ".join(verdicts) or "all gradients ok")


# def my_gradients(engine, inputs, targets, state, masks):
#     fwd = engine.forward(inputs, state, masks)
#     ...
# check_backward(my_gradients)

# %% [markdown]
# ---
#
# **Stop here and write yours first: the answer follows.**
#
# **The answer.** Steps 1, 2 and 9 are `ReferenceEngine.gradients`; steps 3 to 8 are
# `_layer_backward`, which goes through one layer from the last time step to the first. Read them
# against the derivation: each line carries its equation: first as tables (steps 1, 2 and 9, then
# steps 3 to 8), then in the code. The masks enter through two lines: `dh_above = ... dx *
# masks[layer + 1]` before each layer's backward pass (the mask above it: masks 2 and 1 for two
# layers) and `de = ... dx * masks[0]` before the scatter-add into the embedding. The table leaves
# out lines whose comment is not an equation (the transposes, the masks); the source below them
# has every line. Last, the harness of
# the exercise: on the answer it prints errors of 0 (the same code), and on an answer that forgets
# the masks it says `WRONG`.

# %%
beside(ReferenceEngine.gradients)
beside(ReferenceEngine._layer_backward)
show_source(ReferenceEngine.gradients)
show_source(ReferenceEngine._layer_backward)
check_backward(lambda engine, *batch: engine.gradients(*batch).params)
print("and an answer that forgets the dropout masks:")
check_backward(
    lambda engine, inputs, targets, state, masks: engine.gradients(inputs, targets, state).params
)

# %% [markdown]
# ## (f) The gradient check
#
# A derivation can be wrong and code can have typos; a **gradient check** catches both. For each
# parameter entry $w$, the central difference
# $(\mathcal{L}(w+\epsilon) - \mathcal{L}(w-\epsilon))/2\epsilon$ approximates
# $\partial \mathcal{L}/\partial w$ with an error of order $\epsilon^2$ (by Taylor's theorem,
# $\mathcal{L}(w \pm \epsilon) = \mathcal{L} \pm \epsilon \mathcal{L}' + \tfrac12 \epsilon^2
# \mathcal{L}'' \pm \tfrac16 \epsilon^3 \mathcal{L}^{(3)} + \dots$: the difference cancels the even
# terms, and dividing by $2\epsilon$ leaves $\mathcal{L}' + \tfrac16 \epsilon^2 \mathcal{L}^{(3)} +
# \dots$). `ptb_lstm.gradcheck`
# compares every entry of every parameter, and of the incoming state $(h_{-1}, c_{-1})$, with the
# analytic gradient. Its setup, fixed in the function except for the dropout rate:
#
# * a tiny model: vocabulary 11, H = 5, 2 layers, T = 4 steps, batch 3, seed 0;
# * the parameters uniform in **±0.5** (`init_scale` 0.5, five times the small config's ±0.1);
# * an incoming state $(h_{-1}, c_{-1})$ drawn uniform in ±0.5 for every layer, not zeros, so
#   that $\delta f = \delta c \odot c_{t-1}$ at t = 0 and the state gradients are exercised;
# * random input ids and random targets (not text);
# * float64 throughout, $\epsilon = 10^{-5}$;
# * with dropout 0.5, the masks of `step_masks(config, step=0)`, the same in every evaluation of L.
#
# The error of an array is the relative error of (e), $\max|\hat g - g| / \max|g|$, with $g$ the
# analytic gradient as the reference and $\hat g$ the central differences (the denominator
# floored at $10^{-6}$); the check passes when the worst error is at most $10^{-6}$. It runs
# without and with dropout.
#
# **Why seed 0 here and seed 1 in `check_backward`.** `gradcheck` draws its weights, state and
# words from its own `seed` argument, 0 by default; the harness `check_backward` of (e) keeps the
# tiny preset's `seed` (1, the default of every preset) for its weights and draws its state and
# words with seed 1. Neither seed is special: a correct backward pass passes both checks with any
# seed, and the two different ones make the two checks test the code on two different models
# instead of the same one twice. (The ±0.1 / ±0.5 comparison below sets seed 0 to match the
# check's.)

# %%
from ptb_lstm.gradcheck import TOLERANCE, gradcheck

rows = gradcheck(engine="numpy-reference", keep_values=True)
with_dropout = gradcheck(engine="numpy-reference", dropout=0.5)
for r, d in zip(rows, with_dropout, strict=True):
    print(f"{r.name:<26} {r.entries:>4} entries   error {r.error:.1e}   with dropout {d.error:.1e}")
worst = max(r.error for r in rows + with_dropout)
print(f"worst: {worst:.1e} (tolerance {TOLERANCE:.0e})")
assert worst <= TOLERANCE

# %% [markdown]
# **Why ±0.5 and not the small config's ±0.1.** The finite difference has an absolute error
# set by rounding, not by the model: the loss is about 10 (four steps of about $\log 11 \approx 2.4$
# each for a nearly untrained model over 11 words) and float64 holds it to about
# $10^{-16}$ of itself (its 53-bit significand: a relative spacing of
# $2^{-52} \approx 2.2\cdot10^{-16}$), an absolute $10^{-15}$, and dividing the difference of two
# such values by $2\epsilon = 2\cdot10^{-5}$ leaves an error of about $10^{-10}$ in every numeric
# slope, whatever the gradient's size. With weights in ±0.1 the gradients of the lower layers are
# small: $\delta z$ of `lstm_0` has come down through $W_s^\top$ and `lstm_1`'s $W^\top$, both ±0.1,
# and a kernel's gradient is that $\delta z$ times the layer's input (an embedding row in ±0.1) or
# its previous $h$ (small as well). The gradients of the embedding and of `lstm_0`'s two kernels are
# then about $10^{-4}$, and their relative error about $10^{-10} / 10^{-4} = 10^{-6}$: just above
# the tolerance (the ±0.1 column below), and the check would fail code that is correct. With weights
# in ±0.5 the same gradients are about $10^{-2}$ and the same rounding is a relative error near
# $10^{-8}$, far below the tolerance, so that a real mistake (typically an error of order 1) stands
# out. The same central differences at the two scales, with the reference engine (the incoming state
# drawn in ± the same scale; the ±0.5 column is the check above):


# %%
def central_differences(engine, batch, name, eps=1e-5):
    array, numeric = engine.params[name], np.zeros_like(engine.params[name])
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + eps
        plus = engine.gradients(*batch).loss
        array[index] = original - eps
        minus = engine.gradients(*batch).loss
        array[index] = original
        numeric[index] = (plus - minus) / (2 * eps)
    return numeric


results = {}
for scale in (0.5, 0.1):
    config = PRESETS["tiny"].replace(
        hidden_size=5, num_steps=4, batch_size=3, init_scale=scale, seed=0
    )
    engine = ReferenceEngine(config, init_params(config, 11, np.float64), dtype="float64")
    rng = np.random.default_rng(0)
    inputs, targets = rng.integers(0, 11, (3, 4)), rng.integers(0, 11, (3, 4))
    state = [
        (rng.uniform(-scale, scale, (3, 5)), rng.uniform(-scale, scale, (3, 5))) for _ in range(2)
    ]
    grads = engine.gradients(inputs, targets, state)
    print(f"init ±{scale}: the loss = {grads.loss:.2f}")
    for name, g in grads.params.items():
        difference = np.abs(g - central_differences(engine, (inputs, targets, state), name)).max()
        results[name, scale] = (np.abs(g).max(), difference, difference / np.abs(g).max())
print(f"{'':<26}{'init ±0.5':^33}{'init ±0.1':^33}")
print(f"{'':<26}" + f"{'max |g|':>11}{'max |diff|':>11}{'error':>11}" * 2)
for name in engine.params:
    print(
        f"{name:<26}" + "".join(f"{v:>11.1e}" for scale in (0.5, 0.1) for v in results[name, scale])
    )

# %% [markdown]
# Every entry of the ±0.5 check (without dropout): the size of its gradient against its
# difference divided by that entry's own gradient, $|g_k - \hat g_k| / |g_k|$. This per-entry ratio
# is drawn only here, to show where the rounding sits; it is not the relative error of an array,
# which divides by the array's largest gradient. The entries with tiny gradients show larger
# ratios for the reason just seen: the finite difference carries an absolute rounding error of
# about $10^{-10}$ whatever the gradient's size.

# %% figure="notebook1-gradcheck"
g = np.concatenate([np.abs(r.analytic).ravel() for r in rows])
d = np.concatenate([np.abs(r.analytic - r.numeric).ravel() for r in rows])
keep = g > 0
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(g[keep], d[keep] / g[keep], ".", ms=3, alpha=0.5)
ax.set_xlabel("|gradient| of an entry")
ax.set_ylabel("per entry: |analytic - numeric| / |analytic|")
ax.set_title("the reference engine's BPTT against central differences (float64)")
ax.grid(True, which="both", alpha=0.3)
plt.show()

# %% [markdown]
# ## (g) Clipping, SGD, the learning-rate schedule and the whole step
#
# **Global-norm clipping.** An occasional batch produces a very large gradient (a step of
# exploding gradients) that would throw the weights far away. Treat all the gradients as one
# long vector, and if its length exceeds `max_grad_norm` (5 for the small config) scale it down
# to that length, keeping its direction:
#
# $$n = \sqrt{\textstyle\sum_\theta \lVert \delta\theta \rVert^2}, \qquad
# \delta\theta \leftarrow \delta\theta \cdot \frac{\text{max\_grad\_norm}}{\max(n,
# \text{max\_grad\_norm})}$$
#
# **SGD.** Then every parameter takes a step against its gradient:
# $\theta \leftarrow \theta - \eta\,\delta\theta$, with learning rate $\eta$. The embedding's
# gradient is zero outside the rows of the batch's input words (a target that is never an input gets
# no row), so only those rows move.

# %%
show_source(ReferenceEngine.clip_and_update)
grads = {
    "a": np.array([6.0, 8.0]),
    "b": np.array([[3.0, 4.0]]),
}  # a toy gradient, norm sqrt(100 + 25)
norm = np.sqrt(sum(np.sum(g * g) for g in grads.values()))
clipped = {k: g * 5.0 / max(norm, 5.0) for k, g in grads.items()}
print(f"norm {norm:.2f} -> {np.sqrt(sum(np.sum(g * g) for g in clipped.values())):.2f}:", clipped)

# %% [markdown]
# **The schedule.** The learning rate stays at 1 for the first `epochs_at_full_lr` = 4 epochs, then
# is multiplied by `lr_decay` = 0.5 at every new epoch: in epoch e (from 1),
# $\eta_e = 1 \cdot 0.5^{\max(0,\, e - 4)}$. By epoch 13 it is $0.5^9 \approx 0.002$: the
# large early steps find a good region, the small late ones settle in it.

# %% figure="notebook1-schedule"
config = PRESETS["small"]
epochs = np.arange(1, config.epochs + 1)
rates = [config.lr_at_epoch(int(e)) for e in epochs]
fig, ax = plt.subplots(figsize=(6, 3))
ax.step(epochs, rates, where="mid", marker="o")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("learning rate")
ax.set_title("small config: learning rate per epoch")
ax.grid(True, which="both", alpha=0.3)
plt.show()
print([f"{r:g}" for r in rates])

# %% [markdown]
# ### One training step, all together
#
# `ReferenceEngine.train_step` puts the pieces in order: `gradients` (the forward pass from the
# carried state, the loss, BPTT), then `clip_and_update` (the global norm, clipping and SGD), then
# the new carried state. The learning rate of the step comes from the schedule above (1 in the
# first epochs). Three details decide whether a hand-written step matches it:
#
# * **The returned loss is the one before the update**: the loss of this batch under the weights
#   the step started from, computed in the same forward pass as the gradients. (A loss computed
#   after the update would be a different, usually lower, number.)
# * **The state carried on is that forward pass's final state** $(h_{T-1}, c_{T-1})$ of every
#   layer, computed with the old weights (and, with dropout, with this step's masks on the
#   inputs of the layers); it is not recomputed with the updated weights. No gradient flows
#   through it into the next batch. The step reads the state it starts from with
#   `self._state_for(B)`, B = `inputs.shape[0]`, a method every engine inherits from the base
#   class `Engine` (its source and a demonstration follow this list).
# * **The global norm covers the parameter gradients only**: the square root of the sum of
#   squares of every entry of every parameter gradient (9 arrays for two layers), the embedding's as
#   the dense [V, H] array after the scatter-add (the norm of that [V, H] array: a word used several
#   times in the batch has one row, holding its summed gradient; rows of words not in the batch are
#   zero). The incoming-state gradients $\delta h_{-1}, \delta c_{-1}$, which `gradients` also
#   returns, are for checks only and enter neither the norm nor any update. The norm is taken before
#   clipping, and it is what `last_grad_norm` reports.
#
# **Where a step's starting state comes from: `_state_for`.** The engine keeps the carried state
# in `engine.state`, a list of L pairs (h, c), each [rows, H]. `train_step`, `eval_step` and
# `logits` each start with `self._state_for(B)`, B the number of rows of their `inputs`, and it
# compares B with the rows of the carried state (those of layer 0's h):
#
# * **the same B**: it returns `engine.state` as it is, the state the previous step left, however
#   many columns (time steps) the new batch has: only B is compared, so a change of `num_steps`
#   keeps the state;
# * **another B**: it calls `reset_state(B)`, which **replaces** `engine.state` by zeros [B, H] for
#   every layer (the old state, of another shape, is dropped and cannot come back), and returns
#   those zeros. A state of B rows could not feed a batch of another B anyway: row r of the state
#   belongs to row r of the stream folding.
#
# So a step of a new batch size starts like the first step of an epoch. The evaluation of a split
# at batch 1 after training at batch 20 relies on it, and so does the trainer, which resets the
# state to zeros itself at every epoch and evaluation (`reset_state`). The cell shows the method
# and both cases:

# %%
from ptb_lstm.engines import Engine

show_source(Engine._state_for)
config = PRESETS["tiny"]
engine = ReferenceEngine(config, init_params(config, corpus.vocab_size, np.float64), "float64")
inputs, targets = next(batches(corpus.train, config.batch_size, config.num_steps))  # [B, T]
engine.train_step(inputs, targets, learning_rate=0.0)  # leaves a non-zero state of B rows
kept = engine.state
print(
    f"after a step of B = {config.batch_size}: state rows {kept[0][0].shape[0]}, largest |h|",
    f"{np.abs(kept[0][0]).max():.3f}",
)
same = engine._state_for(config.batch_size)
print("_state_for(B) with the same B returns the carried state itself:", same is kept)
fresh = engine._state_for(1)
print(
    f"_state_for(1): {len(fresh)} layers of zeros {fresh[0][0].shape}, all zero "
    f"{all((h == 0).all() and (c == 0).all() for h, c in fresh)}; engine.state replaced: "
    f"{engine.state is fresh and engine.state is not kept}"
)

# %% [markdown]
# **Exercise: the whole step.** Write `my_train_step(engine, inputs, targets, learning_rate,
# masks)` that does what `train_step` does and returns the loss, then check it with `check_step`.
#
# * **What it does.** Take the carried state from `engine.state`; compute the loss and the
#   gradients; clip by the global norm of `engine.config.max_grad_norm`; update `engine.params`
#   in place; carry the new state on by assigning it to `engine.state`; return the loss.
# * **With the engine's gradients.** `engine.gradients(inputs, targets, state, masks)` returns a
#   `Gradients` record with `.loss`, `.params` (the gradients by name) and `.final_state` (the
#   forward pass's final state). Check with `check_step(my_train_step)`.
# * **Entirely by hand.** Use your `my_gradients` of (e) in place of `engine.gradients`. It
#   returns the gradients only; the loss and the state to carry on come from a forward pass of
#   your step, `fwd = engine.forward(inputs, engine.state, masks)`: the loss as
#   `float(engine.nll(engine.log_softmax(fwd.logits), targets.T).sum()) / inputs.shape[0]`, the
#   state as `fwd.final_state`. (Or write a helper that returns all three and call it from both:
#   `check_backward` needs `my_gradients` to return the dict alone, and `check_step` needs the
#   step to return the loss alone.) Check with `check_step(my_train_step, by_hand_only=True)`:
#   it switches off `gradients`, `train_step` and `clip_and_update` on the engine your step
#   receives, so that a step leaning on them fails (the answer closes this section). It guards
#   against slips, not against intent: a step that calls them through the class,
#   `ReferenceEngine.gradients(engine, ...)`, would still pass.
# * **What a step here need not do.** In float64 and with batches of one shape, as here, three
#   things the engine's `train_step` also does (its source follows the answer): turn the masks
#   into the engine's dtype, start from zeros when the batch has another number of rows, and
#   record the norm as `last_grad_norm`.
# * **The check.** `check_step` runs yours beside the engine's `train_step` for four steps of the
#   tiny config (float64, dropout 0.5), from the same weights, on the first PTB batches, and
#   compares the losses, the weights and the carried state by their relative error (at most
#   $10^{-12}$; for the weights and the state, the worst array's). The steps take learning rates 1,
#   0.5, 0.5 and 0.25, and `max_grad_norm` is lowered to 0.5 for the first two, so that clipping
#   acts, and left at 5 for the last two, where it does not: a step that ignores the learning rate,
#   or always rescales to `max_grad_norm`, fails. (Clipping hides a wrong scale of the whole
#   gradient, such as a missing 1/B: only the unclipped steps catch that.) It uses `corpus` (loaded
#   in the first cell), `batches`, `init_params`, `step_masks`, `PRESETS` and `ReferenceEngine` from
#   the cells above; `check_backward` uses all but the first two, and both use `relative_error`.


# %%
def check_step(my_train_step, by_hand_only=False):
    # Outside this notebook it needs: import numpy as np; from ptb_lstm.config import PRESETS;
    # from ptb_lstm.data import batches, load_corpus, locate_data_dir; from ptb_lstm.params import
    # init_params; from ptb_lstm.dropout import step_masks; from ptb_lstm.engines.numpy_reference
    # import ReferenceEngine; corpus = load_corpus(locate_data_dir()); relative_error of (e).
    # Runs my_train_step(engine, inputs, targets, learning_rate, masks) -> loss beside the engine's
    # train_step. by_hand_only=True switches off the engine's gradients, train_step and
    # clip_and_update on the engine handed to my_train_step: forward and the static helpers remain.
    config = PRESETS["tiny"].replace(dropout=0.5)
    schedule = [
        (1.0, 0.5),
        (0.5, 0.5),
        (0.5, 5.0),
        (0.25, 5.0),
    ]  # (learning rate, max_grad_norm) per step
    print(
        f"tiny config: B {config.batch_size}, T {config.num_steps}, H {config.hidden_size}, "
        f"{config.num_layers} layers, V {corpus.vocab_size:,}"
    )
    params = init_params(config, corpus.vocab_size, np.float64)
    mine, engine = (ReferenceEngine(config, params, dtype="float64") for _ in range(2))
    assert all(mine.params[n] is not engine.params[n] for n in params)  # each engine its own copy
    for e in (mine, engine):
        e.reset_state(config.batch_size)  # zeros: the start of an epoch
    if by_hand_only:

        def switched_off(*args, **kwargs):
            raise RuntimeError(
                "engine.gradients, train_step and clip_and_update are switched off "
                "in this check; start from engine.forward"
            )

        mine.gradients = mine.train_step = mine.clip_and_update = switched_off
    wrong = 0
    stream = batches(corpus.train, config.batch_size, config.num_steps)
    steps = zip(stream, schedule, strict=False)  # as many as the schedule has: the stream is longer
    for step, ((inputs, targets), (learning_rate, clip)) in enumerate(steps):
        for e in (mine, engine):
            e.config = config.replace(max_grad_norm=clip)
        masks = step_masks(config, step, dtype=np.float64)
        try:
            got = my_train_step(mine, inputs, targets, learning_rate, masks)
        except RuntimeError as error:
            print(f"step {step}: WRONG, {error}")
            return
        loss = engine.train_step(inputs, targets, learning_rate, masks)
        weights = max(relative_error(mine.params[n], engine.params[n]) for n in engine.params)
        state = max(
            relative_error(a, b)
            for pair in zip(mine.state, engine.state, strict=True)
            for a, b in zip(*pair, strict=True)
        )
        ok = relative_error(got, loss) <= 1e-12 and weights <= 1e-12 and state <= 1e-12
        wrong += not ok
        norm = engine.last_grad_norm
        print(
            f"step {step}: learning rate {learning_rate}, the engine's gradient norm {norm:.3f} "
            f"({'clipped to' if norm > clip else 'not clipped, max'} {clip}); loss {got:.6f} vs "
            f"{loss:.6f}; "
            f"relative error: weights {weights:.1e}, state {state:.1e}  "
            f"{'ok' if ok else 'WRONG'}"
        )
    print("all steps ok" if not wrong else f"{wrong} of {len(schedule)} steps WRONG")


# def my_train_step(engine, inputs, targets, learning_rate, masks):
#     grads = engine.gradients(inputs, targets, engine.state, masks)
#     ...
# check_step(my_train_step)
#
# written entirely by hand, with your my_gradients of (e):
# def my_train_step(engine, inputs, targets, learning_rate, masks):
#     fwd = engine.forward(inputs, engine.state, masks)
#     ...
# check_step(my_train_step, by_hand_only=True)

# %% [markdown]
# ---
#
# **Stop here and write yours first: the answer follows.**
#
# **The answer**, written out from the pieces, checked by the harness against `train_step`:


# %%
def by_hand(engine, inputs, targets, learning_rate, masks):
    grads = engine.gradients(
        inputs, targets, engine.state, masks
    )  # forward from the carried state, loss, BPTT
    norm = np.sqrt(sum(np.sum(g * g) for g in grads.params.values()))  # parameters only, dense dE
    scale = engine.config.max_grad_norm / max(norm, engine.config.max_grad_norm)
    for name, g in grads.params.items():
        engine.params[name] -= learning_rate * scale * g  # SGD along the clipped gradient
    engine.state = grads.final_state  # from this forward pass: the old weights, this step's masks
    return grads.loss  # the loss before the update


check_step(by_hand)
print("and a step that returns the loss after the update:")


def loss_after(engine, inputs, targets, learning_rate, masks):
    state = engine.state
    by_hand(engine, inputs, targets, learning_rate, masks)
    return engine.gradients(inputs, targets, state, masks).loss


check_step(loss_after)

# %% [markdown]
# The engine's own `train_step` and the norm it reports as `last_grad_norm`. (It also turns
# the masks into its dtype, and multiplies `learning_rate * scale` once, in that dtype, before
# the arrays.) How to write that by hand: Python evaluates `learning_rate * scale * g` from left
# to right, as `(learning_rate * scale) * g`, so the two scalars are multiplied first and each
# entry of `g` is multiplied once, by their product, as in the engine. That is what makes the
# update of `by_hand` above match the engine's bit for bit. `learning_rate * (scale * g)` rounds
# twice per entry, and can differ from it in the last bit. (In float32 the scalars must also be
# Python floats, as the engine's are: `update_function` below takes `float(...)` of the norm, and
# NumPy then rounds their product to float32 once, as `self.np_dtype(...)` does.)

# %%
from ptb_lstm.engines.numpy_reference import Gradients

show_source(ReferenceEngine.train_step)
show_source(Gradients.global_norm)

# %% [markdown]
# ### A step written entirely by hand
#
# The answer to `by_hand_only=True`: both exercises in one cell, from `engine.forward` and the
# static `log_softmax` and `nll` alone. `gradients_by_hand` is the first exercise's answer, steps 1
# to 9 of (e) in a single function: it reads the forward record `fwd` and the weights, and keeps
# nothing from the engine's own backward pass. `step_by_hand` calls the forward pass once for the
# loss and the carried state, and `gradients_by_hand` calls it again (the same numbers: simpler
# code, not faster). Its weights may differ from the engine's in the last bit (about $10^{-16}$):
# `np.einsum` sums $\delta W_s$ over the positions in another order than the engine's reshaped
# product. (A step that sums an LSTM layer's gradients in another order differs in the carried
# state too, by as little: the changed weights feed the next forward pass.) The last run shows the
# check refusing the answer above, which leans on `engine.gradients`. (Step 1's index arrays
# are named `t_idx, b_idx` here, the time and the row of every position; the `tt` of (e)'s
# idiom and of `step_function` below is another array, `targets.T`.)


# %%
def gradients_by_hand(engine, inputs, targets, state, masks):
    p, fwd = engine.params, engine.forward(inputs, state, masks)
    T, B = fwd.ids.shape
    t_idx, b_idx = np.arange(T)[:, None], np.arange(B)[None, :]  # [T, 1] and [1, B]
    dy = np.exp(engine.log_softmax(fwd.logits))  # step 1: p ...
    dy[t_idx, b_idx, targets.T] -= 1  # ... minus onehot(target) ...
    dy /= B  # ... over B
    grads = {
        "softmax_kernel": np.einsum("tbh,tbv->hv", fwd.top, dy),  # step 2: sum over positions
        "softmax_bias": dy.sum(axis=(0, 1)),
    }
    dx = dy @ p["softmax_kernel"].T  # the gradient of the softmax's input x^(L)
    for k in reversed(range(len(fwd.layers))):  # layer k, the top one first
        layer, W, U = fwd.layers[k], p[f"lstm_{k}_kernel"], p[f"lstm_{k}_recurrent_kernel"]
        dh_above = dx if masks is None else dx * masks[k + 1]  # back through the mask above
        dW, dU, db, dx = (
            np.zeros_like(W),
            np.zeros_like(U),
            np.zeros_like(p[f"lstm_{k}_bias"]),
            np.zeros_like(dh_above),  # to be the gradient of this layer's input x^(k)
        )
        dh_next = dc_next = np.zeros_like(layer.h[0])  # nothing from step T
        for t in reversed(range(T)):
            i, f, g, o = layer.i[t], layer.f[t], layer.g[t], layer.o[t]
            dh = dh_above[t] + dh_next  # step 3
            tanh_c = np.tanh(layer.c[t + 1])
            dc = dh * o * (1 - tanh_c**2) + dc_next  # steps 4 and 5
            dz = np.concatenate(
                [
                    dc * g * i * (1 - i),  # steps 6 and 7: di, df, dg, do through
                    dc * layer.c[t] * f * (1 - f),  # their nonlinearities
                    dc * i * (1 - g**2),
                    dh * tanh_c * o * (1 - o),
                ],
                axis=1,
            )
            dW += layer.x[t].T @ dz
            dU += layer.h[t].T @ dz
            db += dz.sum(axis=0)  # step 8
            dx[t], dh_next, dc_next = dz @ W.T, dz @ U.T, dc * f
        grads |= {f"lstm_{k}_kernel": dW, f"lstm_{k}_recurrent_kernel": dU, f"lstm_{k}_bias": db}
    de = dx if masks is None else dx * masks[0]  # back through the embedding's mask
    grads["embedding"] = np.zeros_like(p["embedding"])
    np.add.at(grads["embedding"], fwd.ids, de)  # step 9: a scatter-add into the rows
    return grads


def step_by_hand(engine, inputs, targets, learning_rate, masks):
    fwd = engine.forward(inputs, engine.state, masks)
    loss = float(engine.nll(engine.log_softmax(fwd.logits), targets.T).sum()) / inputs.shape[0]
    grads = gradients_by_hand(engine, inputs, targets, engine.state, masks)
    norm = np.sqrt(sum(np.sum(g * g) for g in grads.values()))
    scale = engine.config.max_grad_norm / max(norm, engine.config.max_grad_norm)
    for name, g in grads.items():
        engine.params[name] -= learning_rate * scale * g
    engine.state = fwd.final_state
    return loss


check_backward(gradients_by_hand)
check_step(step_by_hand, by_hand_only=True)
print("and the answer above, which calls engine.gradients:")
check_step(by_hand, by_hand_only=True)

# %% [markdown]
# ### The whole training step as one pure function
#
# The engine is an object with state: `train_step` reads `engine.params` and `engine.state`,
# changes both in place and returns only the loss. The same step can be written as a **pure
# function**, one whose result depends on its arguments alone and which changes none of them:
#
# $$(\mathcal{L},\ \nabla_\theta \mathcal{L},\ s') = \text{step}(\theta,\ s,\ \text{inputs},\
# \text{targets},\ m)$$
#
# with $\theta$ the parameters, $s$ the carried state, $m$ the dropout masks, and $s'$ the state
# to carry on. The update is then a second pure function of $(\theta, \nabla_\theta\mathcal{L})$,
# and a training loop is `loss, grads, state = step(params, state, ...)` followed by
# `params = update(params, grads)`: nothing is hidden in an object. This is the form Part IV's
# autograd and the TensorFlow parts compute too. `step_function` below is the whole of (c) to
# (e) in one function, for **any number of layers** L, read from the parameter names. It uses
# nothing from the engine but `sigmoid` (and NumPy).
#
# **Its conventions, all stated here before the code uses them:**
#
# * **Arguments.** `params`: a dict from the names of (b) to arrays, layers `lstm_0` to
#   `lstm_{L-1}`; L is the number of names ending in `_recurrent_kernel`. `state`: a list of L
#   pairs `(h, c)`, each [B, H], layer 0 first: $(h^{(l)}_{-1}, c^{(l)}_{-1})$. `inputs`,
#   `targets`: word ids [B, T], as the stream folding gives them. `masks`: a list of L + 1 arrays
#   [T, B, H] (index 0 on the embedding output, index l + 1 on layer l's output) or `None`,
#   which stands for masks of ones.
# * **Time-major.** The first thing it does is `ids = inputs.T` and `tt = targets.T`, [T, B]:
#   every activation is [T, B, ...], and index `[t]` is time t.
# * **Rows of h and c.** Per layer, `h` and `c` are [T + 1, B, H] with the carried-in state in
#   row 0: `h[t]` is $h_{t-1}$ and `h[t + 1]` is $h_t$. `x` (the layer's masked input)
#   and `a` (the four activated gates, [T, B, 4H], blocks i, f, g, o) have T rows: `x[t]` is
#   $x_t$, `a[t]` holds $i_t, f_t, g_t, o_t$.
# * **Gradient names** as in (e): `dx` the gradient with respect to a layer's masked input
#   $x^{(l)}$, `dh_above = dx * m[l + 1]` what arrives at layer l's unmasked output from above
#   (with `dx` of layer l + 1, or of the softmax), `dh_next`/`dc_next` the shares of
#   $\delta h_{t-1}, \delta c_{t-1}$ from step t, `de` the embedding rows' gradient.
# * **Returns** `(loss, grads, new_state)`: the loss summed over time and averaged over the B rows,
#   under the parameters it was given; `grads` with the names and shapes of `params` (the
#   embedding's dense, [V, H]); `new_state` the L pairs $(h_{T-1}, c_{T-1})$, new arrays.
# * **Overflow.** It runs under `np.errstate(over="ignore", invalid="ignore")` as `train_step`
#   does ((c) explained why): a diverging step returns a non-finite loss without warnings.
# * **Dtype.** Every array it makes takes the parameters' dtype (`np.zeros(shape, dtype)`, the
#   advice of (e)): a bare `np.zeros(shape)` is float64, and with float32 parameters it would
#   quietly carry the state and the gradients in float64, no longer the engine's computation.
#
# `update_function` is clipping and SGD, pure as well: it returns new arrays and the norm.


# %%
def step_function(params, state, inputs, targets, masks=None):
    """One training step's (loss, gradients, new state) for L layers, L the number of names in
    params ending in _recurrent_kernel; changes none of its arguments. inputs, targets [B, T];
    state L pairs (h, c) [B, H]; masks L + 1 arrays [T, B, H] or None. New arrays take the
    parameters' dtype."""
    L = sum(name.endswith("_recurrent_kernel") for name in params)
    ids, tt = inputs.T, targets.T  # [T, B] time-major
    T, B = ids.shape
    H = params["lstm_0_recurrent_kernel"].shape[0]
    dtype = params["lstm_0_recurrent_kernel"].dtype  # float32 or float64, as the engine's
    m = [1.0] * (L + 1) if masks is None else masks  # a mask of ones: no dropout
    positions = np.arange(T)[:, None], np.arange(B)[None, :], tt  # entry tt[t, r] of row (t, r)
    with np.errstate(over="ignore", invalid="ignore"):
        # forward, layer by layer, one time step at a time: (c)
        x = params["embedding"][ids] * m[0]  # x^(0) [T, B, H]
        kept = []  # per layer: (x, h, c, a)
        for layer in range(L):
            W = params[f"lstm_{layer}_kernel"]
            U = params[f"lstm_{layer}_recurrent_kernel"]
            b = params[f"lstm_{layer}_bias"]
            h = np.zeros((T + 1, B, H), dtype)
            c = np.zeros((T + 1, B, H), dtype)
            h[0], c[0] = state[layer]  # h[t] is h(t-1)
            a = np.zeros((T, B, 4 * H), dtype)  # i, f, g, o of every step, activated
            for t in range(T):
                z = x[t] @ W + h[t] @ U + b  # z(t) = x(t) W + h(t-1) U + b
                a[t, :, : 2 * H] = sigmoid(z[:, : 2 * H])  # i, f
                a[t, :, 2 * H : 3 * H] = np.tanh(z[:, 2 * H : 3 * H])  # g
                a[t, :, 3 * H :] = sigmoid(z[:, 3 * H :])  # o
                i, f, g, o = np.split(a[t], 4, axis=1)
                c[t + 1] = f * c[t] + i * g  # c(t) = f c(t-1) + i g
                h[t + 1] = o * np.tanh(c[t + 1])  # h(t) = o tanh(c(t))
            kept.append((x, h, c, a))
            x = h[1:] * m[layer + 1]  # the next layer's input, or x^(L) for the softmax
        logits = x @ params["softmax_kernel"] + params["softmax_bias"]  # [T, B, V]
        # the loss: (d)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        loss = float(-log_p[positions].sum()) / B
        # backward: (e), steps 1 to 9
        dlogits = np.exp(log_p)
        dlogits[positions] -= 1.0
        dlogits /= B  # step 1: (p - onehot) / B
        grads = {
            "softmax_kernel": x.reshape(T * B, H).T @ dlogits.reshape(T * B, -1),  # step 2
            "softmax_bias": dlogits.sum(axis=(0, 1)),
        }
        dx = dlogits @ params["softmax_kernel"].T  # dx^(L)
        for layer in reversed(range(L)):  # the top layer first
            x_in, h, c, a = kept[layer]
            W = params[f"lstm_{layer}_kernel"]
            U = params[f"lstm_{layer}_recurrent_kernel"]
            dh_above = dx * m[layer + 1]  # back through the mask above the layer
            dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros(4 * H, dtype)
            dx = np.zeros((T, B, H), dtype)  # to be dx^(layer)
            dh_next, dc_next = np.zeros((B, H), dtype), np.zeros((B, H), dtype)  # none from step T
            for t in reversed(range(T)):
                i, f, g, o = np.split(a[t], 4, axis=1)
                dh = dh_above[t] + dh_next  # step 3
                tanh_c = np.tanh(c[t + 1])  # c[t + 1] is c(t)
                dc = dc_next + dh * o * (1 - tanh_c**2)  # steps 4 and 5
                dz = np.concatenate(  # steps 6 and 7; c[t] is c(t-1)
                    [
                        dc * g * i * (1 - i),
                        dc * c[t] * f * (1 - f),
                        dc * i * (1 - g**2),
                        dh * tanh_c * o * (1 - o),
                    ],
                    axis=1,
                )
                dW += x_in[t].T @ dz  # step 8; h[t] is h(t-1)
                dU += h[t].T @ dz
                db += dz.sum(axis=0)
                dx[t] = dz @ W.T
                dh_next, dc_next = dz @ U.T, dc * f  # the shares of dh(t-1), dc(t-1)
            grads[f"lstm_{layer}_kernel"] = dW
            grads[f"lstm_{layer}_recurrent_kernel"] = dU
            grads[f"lstm_{layer}_bias"] = db
        de = dx * m[0]  # back through the embedding's mask
        grads["embedding"] = np.zeros_like(params["embedding"])
        np.add.at(grads["embedding"], ids, de)  # step 9: the scatter-add
    new_state = [(h[T].copy(), c[T].copy()) for _, h, c, _ in kept]
    return loss, {name: grads[name] for name in params}, new_state


def update_function(params, grads, learning_rate, max_grad_norm):
    """Global-norm clipping and SGD: (new params, the norm before clipping); changes neither
    argument."""
    norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    scale = max_grad_norm / max(norm, max_grad_norm)
    return {name: params[name] - learning_rate * scale * grads[name] for name in params}, norm


# %% [markdown]
# **The check, on one PTB batch.** The tiny config with dropout 0.5
# (`tiny_dropout = PRESETS["tiny"].replace(dropout=0.5)`, its masks from `step_masks`), with
# `max_grad_norm` lowered to 1 so that clipping acts, in float64 with 2
# layers, then 3, and in float32 with 2, from a carried state that is not zero: the state the
# engine's own first step left. `step_function` runs on copies of the engine's parameters and of
# that state (`get_params()`, `get_state()`); the engine's `gradients` on the same; every
# relative error of (e) must be at most $10^{-12}$, and every array returned must have the
# parameters' dtype. (The errors are exactly 0 here, in float32 as in float64: the function does
# the engine's operations in the engine's order and dtype. Another order of the sums would give
# rounding differences of about $10^{-16}$ in float64, $10^{-7}$ in float32.) The cell also
# checks that the function changed none of its arguments, prints the global norm of the
# gradients and whether it was above `max_grad_norm` (clipped), and then trains three steps with
# `step_function` and `update_function` in a loop beside the engine's `train_step`, each step
# printing its norm the same way. Last, the same comparison of one step on the small config with
# dropout, `small_dropout` of (b) (H = 200, T = 20, B = 20, V = 10,000), in float64 with
# `max_grad_norm` 1, without the loop: a few seconds of work, where the tiny config's take
# milliseconds.


# %%
def clipping(norm, max_grad_norm):
    """The norm and whether global-norm clipping scaled the gradients down."""
    return f"norm {norm:.3f}, " + ("clipped" if norm > max_grad_norm else "not clipped")


def check_step_function(base, num_layers, dtype=np.float64, loop_steps=3):
    config = base.replace(num_layers=num_layers, max_grad_norm=1.0)
    params = init_params(config, corpus.vocab_size, dtype)
    engine = ReferenceEngine(config, params, dtype=np.dtype(dtype).name)
    stream = batches(corpus.train, config.batch_size, config.num_steps)
    first, (inputs, targets) = next(stream), next(stream)
    engine.train_step(*first, 1.0, step_masks(config, 0, dtype=dtype))  # a carried state
    params, state = engine.get_params(), engine.get_state()  # copies: the engine cannot touch
    before = {n: a.copy() for n, a in params.items()}, [(h.copy(), c.copy()) for h, c in state]
    masks = step_masks(config, 1, dtype=dtype)
    loss, grads, new_state = step_function(params, state, inputs, targets, masks)
    dtypes = {a.dtype for a in grads.values()} | {a.dtype for pair in new_state for a in pair}
    expected = engine.gradients(inputs, targets, state, masks)
    errors = {"loss": relative_error(loss, expected.loss)}
    errors |= {name: relative_error(grads[name], expected.params[name]) for name in grads}
    errors["new state"] = max(
        relative_error(mine, theirs)
        for pair, pairs in zip(new_state, expected.final_state, strict=True)
        for mine, theirs in zip(pair, pairs, strict=True)
    )
    unchanged = all((params[n] == before[0][n]).all() for n in params) and all(
        (a == b).all()
        for pair, old in zip(state, before[1], strict=True)
        for a, b in zip(pair, old, strict=True)
    )
    norm = np.sqrt(sum(np.sum(g * g) for g in grads.values()))
    print(
        f"H {config.hidden_size}, T {config.num_steps}, B {config.batch_size}, dropout "
        f"{config.dropout}, {num_layers} layers, {np.dtype(dtype).name}: {len(grads)} gradients; "
        f"arguments unchanged: {unchanged}; dtypes returned: {sorted(str(d) for d in dtypes)}; "
        f"{clipping(norm, config.max_grad_norm)} (max_grad_norm {config.max_grad_norm:g})"
    )
    for name, error in errors.items():
        print(f"    {name:<26} relative error {error:.1e}")
    assert unchanged and max(errors.values()) <= 1e-12 and dtypes == {np.dtype(dtype)}
    # steps of the pure loop beside the engine, from the same weights and state
    for step, (inputs, targets) in zip(range(2, 2 + loop_steps), stream, strict=False):
        masks = step_masks(config, step, dtype=dtype)
        loss, grads, state = step_function(params, state, inputs, targets, masks)
        params, norm = update_function(params, grads, 1.0, config.max_grad_norm)
        engine_loss = engine.train_step(inputs, targets, 1.0, masks)
        weights = max(relative_error(params[n], engine.params[n]) for n in params)
        print(
            f"    pure loop, step {step}: loss {loss:.6f} (engine {engine_loss:.6f}), "
            f"{clipping(norm, config.max_grad_norm)}; relative error of the weights {weights:.1e}"
        )
        assert relative_error(loss, engine_loss) <= 1e-12 and weights <= 1e-12


tiny_dropout = PRESETS["tiny"].replace(dropout=0.5)
check_step_function(tiny_dropout, num_layers=2)
check_step_function(tiny_dropout, num_layers=3)
check_step_function(tiny_dropout, num_layers=2, dtype=np.float32)
check_step_function(small_dropout, num_layers=2, loop_steps=0)  # one step: seconds, not ms

# %% [markdown]
# ## (h) A short training run
#
# Everything together: the training loop over one epoch's stream-folded batches, the state reset
# at the start of the epoch and carried from batch to batch, and one `train_step` (forward, loss,
# BPTT, clipping, SGD) per batch. This is the loop the toolkit's trainer (`ptb_lstm.train.train`,
# behind `ptb-lstm train`) runs, with its logging, checkpoints and evaluations around it.
# Most of the reference engine's matrix products (those inside the loop over time, 20 rows each; the
# softmax's have 400) are too small for BLAS (the linear-algebra library behind NumPy's `@`) to
# split across cores with profit, so the loop holds BLAS to one thread, with `threadpool_limits`
# (from `threadpoolctl`), which changes the limit at run time for one block of code; outside
# Python the same limit is set before the program starts, by the environment variables
# `OPENBLAS_NUM_THREADS=1` (for OpenBLAS) or `OMP_NUM_THREADS=1` (for OpenMP builds). The time
# it prints is measured live, on the machine that ran this notebook and with whatever else that
# machine was doing: it includes the loop around the steps, and it is not a benchmark (section
# (i) and `docs/performance.md` have those).

# %%
from threadpoolctl import threadpool_limits

from ptb_lstm.dropout import step_masks
from ptb_lstm.evaluate import evaluate

config = PRESETS["small"]
engine = ReferenceEngine(config, init_params(config, corpus.vocab_size), dtype="float32")
engine.reset_state(config.batch_size)  # zeros at the start of every epoch
learning_rate = config.lr_at_epoch(1)
losses, norms = [], []
probe = next(batches(corpus.valid, config.batch_size, config.num_steps))[
    0
]  # a fixed batch to look at


def forget_gates(
    engine,
):  # every forget-gate value of both layers on the probe batch, from zero state
    zeros = [
        (np.zeros((config.batch_size, config.hidden_size), np.float32),) * 2
    ] * config.num_layers
    return np.concatenate([layer.f.ravel() for layer in engine.forward(probe, zeros).layers])


f_before = forget_gates(engine)
started = time.perf_counter()
with threadpool_limits(limits=1):
    for step, (inputs, targets) in enumerate(
        batches(corpus.train, config.batch_size, config.num_steps)
    ):
        if step == STEPS:
            break
        masks = step_masks(config, step)  # None: the small config has no dropout
        losses.append(
            engine.train_step(inputs, targets, learning_rate, masks)
        )  # carries the state on
        norms.append(engine.last_grad_norm)
    seconds = time.perf_counter() - started
    valid = evaluate(engine, corpus.valid[:8001], config.batch_size, config.num_steps)
print(
    f"{STEPS} steps in {seconds:.0f} s ({1000 * seconds / STEPS:.0f} ms a step); "
    f"perplexity of the last step {np.exp(losses[-1] / config.num_steps):.0f}; "
    f"on the first 8,000 valid tokens {valid.perplexity:.0f} (untrained: about 10,000)"
)
clipped = np.array(norms) > config.max_grad_norm
print(
    f"gradient norm: median {np.median(norms):.2f}, largest {max(norms):.2f} (step "
    f"{int(np.argmax(norms))}); "
    f"clipped in {clipped.sum()} of {STEPS} steps, {clipped[: STEPS // 2].sum()} of them in the "
    f"first {STEPS // 2}"
)
for label, f in (("before", f_before), ("after", forget_gates(engine))):
    print(
        f"forget gates {label} the {STEPS} steps: mean {f.mean():.3f}, 5th to 95th percentile "
        f"{np.percentile(f, 5):.3f} to {np.percentile(f, 95):.3f}, above 0.9: "
        f"{np.mean(f > 0.9):.2%}"
    )

# %% figure="notebook1-curve"
per_word = np.array(losses) / config.num_steps  # the loss is summed over the T steps
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
left.plot(np.exp(per_word), lw=0.8, label="each step")
left.plot(
    np.exp(np.cumsum(per_word) / np.arange(1, len(per_word) + 1)),
    label="running mean (as the trainer logs it)",
)
left.set_yscale("log")
left.set_xlabel("training step")
left.set_ylabel("training perplexity")
left.legend()
left.grid(True, which="both", alpha=0.3)
right.plot(norms, lw=0.8)
right.axhline(config.max_grad_norm, color="tab:red", ls="--", label="max_grad_norm: clipped above")
right.set_xlabel("training step")
right.set_ylabel("global gradient norm")
right.legend()
right.grid(True, alpha=0.3)
fig.suptitle("the reference engine, small config, the first steps of epoch 1")
plt.tight_layout()
plt.show()

# %% [markdown]
# In the first steps the gradient norm jumps far above `max_grad_norm` (the dashed line; the
# second printed line gives the largest norm and how many of the steps were clipped): these are
# the steps clipping is for. Unclipped, one step of learning rate 1 along such a gradient
# would throw away what the previous steps learnt; clipped, it moves the weights by at most
# learning rate × `max_grad_norm`. The
# perplexity falls from 10,000 to around a thousand within a hundred steps; the full 13 epochs
# bring it near 40 on the training text and 120 on the valid split (section (j)). The last two
# printed lines look at the forget gates of both layers on one fixed valid batch: in these first
# steps they do not move towards 1, and a hundred steps say nothing about where a trained
# model's gates end up.

# %% [markdown]
# ## (i) Making it fast
#
# The reference engine is written to be read, not to be fast, and 13 epochs of the small model are
# 30,199 steps. The `numpy` engine (`ptb_lstm/engines/numpy_engine.py`) computes the same function
# faster. Its changes, each timed here as a small piece of the small model's
# step (float32, one BLAS thread, best of several runs, on whatever machine runs this notebook):
#
# 1. **One product for the input projections of all T steps.** $x_t W + b$ does not depend on
#    the recurrence, so a layer's 20 products [20, 200] × [200, 800] become one [400, 200] ×
#    [200, 800]; only $h_{t-1}U$ stays in the loop. The same for the weight gradients, once the
#    backward loop has produced every $\delta z_t$: $\delta W = X^\top \delta Z$ and
#    $\delta U = H_{\text{prev}}^\top \delta Z$ over all steps at once instead of sums of 20
#    products.
# 2. **One tanh for the four gates.** $\sigma(z) = \tfrac12\tanh(\tfrac12 z) + \tfrac12$, so the
#    whole [B, 4H] block is activated in place by a scale, one tanh, a scale and a shift (on
#    the g columns scale 1 and shift 0, which leave tanh).
# 3. **A softmax without its row-maximum pass, timed and not used.** exp taken directly, with
#    only a row whose sum came out infinite (an overflow) or zero (an underflow) recomputed with
#    its maximum subtracted, saves passes over the logits [T·B, V], the largest array of the
#    step (V = 10,000 against H = 200): the reference reads them for the maximum, writes a
#    shifted copy and then its exp. The table shows what that saves of this one piece; measured
#    on whole training steps it gained under 5% at every size, so the engine subtracts the
#    maximum as the reference does. The gain of a piece is not the gain of the step.
# 4. **A sparse embedding update.** Only the rows of the batch's words are summed and updated,
#    not a dense [V, H] gradient.
# 5. The step's large arrays kept and reused from step to step (a fresh array of tens of
#    megabytes is new memory that the operating system zeroes at every step), and the
#    per-time-step products written with the weights as the left operand, $(U^\top
#    h_{t-1}^\top)^\top$ instead of $h_{t-1}U$: the same numbers, by a path of the BLAS library
#    that is faster for 20 rows. What each change gains of a whole step at the small, medium
#    and large sizes, and the changes that were measured and removed (among them computing,
#    before the backward loop, every factor of $\delta z_t$ that does not depend on the
#    recurrence), are in `docs/performance.md`.
#
# The table times one instance of each piece. A step holds several of most (two layers, the
# gates at each of 20 time steps in the forward and the backward pass), and item 5 is not in
# the table, so its savings do not add up to the difference between the whole steps below.

# %%
from threadpoolctl import threadpool_limits

from ptb_lstm.engines.numpy_engine import _sum_rows


def best_ms(fn, repeat=7):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * min(times)


rng = np.random.default_rng(0)
T, B, H, V = 20, 20, 200, corpus.vocab_size
X = rng.standard_normal((T, B, H), dtype=np.float32)
W = rng.standard_normal((H, 4 * H), dtype=np.float32)
Z = rng.standard_normal((B, 4 * H), dtype=np.float32)
DZ = rng.standard_normal((T * B, 4 * H), dtype=np.float32)
logits = rng.standard_normal((T * B, V), dtype=np.float32)
E = rng.standard_normal((V, H), dtype=np.float32)
ids = rng.integers(0, V, T * B)
scale = np.where((np.arange(4 * H) // H) == 2, 1.0, 0.5).astype(np.float32)
offset = np.where((np.arange(4 * H) // H) == 2, 0.0, 0.5).astype(np.float32)


def gates_reference(z):
    return (
        sigmoid(z[:, :H]),
        sigmoid(z[:, H : 2 * H]),
        np.tanh(z[:, 2 * H : 3 * H]),
        sigmoid(z[:, 3 * H :]),
    )


def gates_fast(z):
    z = z * scale
    np.tanh(z, out=z)
    z *= scale
    z += offset
    return z


rows = np.arange(T * B)


def softmax_reference(y):  # -log p(target) of every row, with the row-maximum pass
    s = y - y.max(axis=1, keepdims=True)
    return np.log(np.exp(s).sum(axis=1)) - s[rows, ids]


def softmax_fast(y):  # the same without it; rows whose sum overflowed or underflowed are redone
    sums = np.exp(y).sum(axis=1)
    nll = np.log(sums) - y[rows, ids]
    bad = ~(np.isfinite(sums) & (sums > 0))
    if bad.any():  # never with these logits
        nll[bad] = softmax_reference(y)[bad]
    return nll


timed_dense, timed_sparse = E.copy(), E.copy()  # what the timed updates change, not E


def embedding_dense(E=timed_dense):
    grad = np.zeros_like(E)
    np.add.at(grad, ids, X.reshape(-1, H))
    E -= grad


def embedding_sparse(E=timed_sparse):
    rows, sums = _sum_rows(ids, X.reshape(-1, H))
    E[rows] -= sums


dense, sparse = E.copy(), E.copy()
embedding_dense(dense)
embedding_sparse(sparse)
print(
    f"{T * B} positions touch {len(np.unique(ids))} of the {V:,} embedding rows; the sparse update "
    f"differs from the dense one by at most {np.abs(dense - sparse).max():.1e}"
)
assert np.allclose(dense, sparse, atol=1e-5)
assert np.allclose(np.concatenate(gates_reference(Z), axis=1), gates_fast(Z), atol=1e-6)
assert np.allclose(softmax_reference(logits), softmax_fast(logits), rtol=1e-5)
cases = [
    (
        "input projection, 20 steps",
        lambda: [X[t] @ W for t in range(T)],
        lambda: X.reshape(-1, H) @ W,
    ),
    (
        "kernel gradient, 20 steps",
        lambda: sum(X[t].T @ DZ[t * B : (t + 1) * B] for t in range(T)),
        lambda: X.reshape(-1, H).T @ DZ,
    ),
    ("gate activations, one step", lambda: gates_reference(Z), lambda: gates_fast(Z)),
    ("cross-entropy of [400, V]", lambda: softmax_reference(logits), lambda: softmax_fast(logits)),
    ("embedding update", embedding_dense, embedding_sparse),
]
with threadpool_limits(limits=1):
    print(f"{'change':<30} {'reference ms':>13} {'fast ms':>9} {'saved ms':>9}")
    for name, slow, fast in cases:
        a, b = best_ms(slow), best_ms(fast)
        print(f"{name:<30} {a:>13.2f} {b:>9.2f} {a - b:>9.2f}")

# %% [markdown]
# **The whole training step.** Measured by the benchmark, `make bench` (float32, a step of the
# small model, 2026-12-06, an idle 2-core AMD EPYC; the run in `docs/bench.md`, which holds the
# latest): the `numpy` engine took 56.5 ms and the reference engine 130.0 ms, **2.3 times
# faster** (the torch engine 56.2 ms), where the matrix products alone need at least 31.4 ms at
# the machine's best rate, 35.3 ms at the shapes the step runs them at.
#
# The cell below is this build's reading only, not a benchmark. It times both engines live, from
# the same weights on the same batch (the `numpy` engine on BLAS's own threads, as it runs by
# default; the reference with one BLAS thread), the best of three single steps each, on the
# machine that executed this notebook and under whatever else it was running then. It prints
# only the ratio of the two times, taken in the same minute under the same load, and no
# milliseconds, which would not compare with the figures above nor from one execution to the
# next. The ratio moves with the load too: other work slows the multi-threaded `numpy` engine
# more, and on a machine whose cores are all taken it can even come out slower than the
# single-threaded reference. (The loop average of (h) measures something else again: every step
# of a run, with its loop and masks.)

# %%
from ptb_lstm.engines import create_engine

config = PRESETS["small"]
params = init_params(config, corpus.vocab_size)
inputs, targets = next(batches(corpus.train, config.batch_size, config.num_steps))
timings = {}
for name in ("numpy-reference", "numpy"):
    engine = create_engine(name, config, params, "float32")
    engine.train_step(inputs, targets, 1.0)  # the first step allocates
    with threadpool_limits(limits=1 if name == "numpy-reference" else None):
        timings[name] = min(
            best_ms(lambda engine=engine: engine.train_step(inputs, targets, 1.0), repeat=1)
            for _ in range(3)
        )
ratio = timings["numpy-reference"] / timings["numpy"]
print(
    "this build's reading: the numpy engine's step was "
    + (f"{ratio:.1f} times faster" if ratio >= 1 else f"{1 / ratio:.1f} times slower")
    + " than the reference engine's (a ratio of two live timings under one load; not a benchmark)"
)

# %% [markdown]
# **Does the fast engine compute the same thing?** Every change above is an algebraic identity
# or a reordering, so in float64 the two engines must agree to rounding. Both engines train 6
# steps from the same weights on the same random batches (the state carried on), with
# `max_grad_norm` lowered to 0.5 so that clipping acts in every step, without and with dropout
# (the same masks from `ptb_lstm.dropout`), on tiny shapes and on the small model's shapes. The
# test suite asserts the same (`tests/test_reference_engine.py`): every relative error (the
# measure of (e), the reference engine's arrays as the reference) at most $10^{-12}$.


# %%
def equality(config, vocab_size, steps=6):
    params = init_params(config, vocab_size, np.float64)
    ids = np.random.default_rng(7).integers(
        0, vocab_size, (config.batch_size, steps * config.num_steps + 1)
    )
    engines = [create_engine(n, config, params, "float64") for n in ("numpy-reference", "numpy")]
    losses, norms = [[], []], []
    for s in range(steps):
        T = config.num_steps
        x, y = ids[:, s * T : (s + 1) * T], ids[:, s * T + 1 : (s + 1) * T + 1]
        masks = step_masks(config, s, dtype=np.float64)
        for k, engine in enumerate(engines):
            losses[k].append(engine.train_step(x, y, 1.0, masks))
        norms.append(engines[0].last_grad_norm)
    assert min(norms) > config.max_grad_norm  # every step clipped
    a, b = engines[0].get_params(), engines[1].get_params()
    return (
        relative_error(losses[1], losses[0]),  # the numpy engine against the reference
        max(relative_error(b[n], a[n]) for n in a),
        min(norms),
    )


print(f"{'shapes':<37} {'dropout':>7} {'losses':>9} {'params':>9} {'min norm':>9}")
with threadpool_limits(limits=1):
    for label, base, vocab_size in [
        ("tiny (H 16, B 4, T 5, V 50)", PRESETS["tiny"], 50),
        ("small (H 200, B 20, T 20, V 10,000)", PRESETS["small"], 10_000),
    ]:
        for rate in (0.0, 0.5):
            loss, param, norm = equality(base.replace(dropout=rate, max_grad_norm=0.5), vocab_size)
            print(f"{label:<37} {rate:>7} {loss:>9.1e} {param:>9.1e} {norm:>9.2f}")
            assert max(loss, param) <= 1e-12

# %% [markdown]
# ## (j) The full results
#
# The `numpy` engine trained the small config for all 13 epochs (30,199 steps, `make train`,
# float32) on a 2-core CPU. Its perplexities, read from `docs/results/numpy/`, beside the paper's,
# the TensorFlow tutorial's and those of the original series (whose NumPy part took about 10 hours).
# The wall time is the whole run's: the 13 epochs, an evaluation of the valid split after each,
# and the final evaluations, on a machine that also ran other work, so it is more than 30,199
# times the benchmark's step time quoted in (i): epochs that ran beside other work took longer a
# step. The table,
# then the run's own record of its time:


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


results_table(["numpy"])
records = [
    json.loads(line)
    for line in (REPO / "docs/results/numpy/metrics.jsonl").read_text().splitlines()
    if line.strip()
]
epochs = [r for r in records if r["event"] == "epoch"]
training = sum(r["epoch_time"] for r in epochs)
steps = sum(r["steps"] for r in epochs)
print(
    f"ms a step, per epoch: median {np.median([r['ms_per_step'] for r in epochs]):.1f}, fastest "
    f"{min(r['ms_per_step'] for r in epochs):.1f}, slowest "
    f"{max(r['ms_per_step'] for r in epochs):.1f}; "
    f"over all {steps:,} steps {1000 * training / steps:.1f}"
)
print(
    f"training {training / 60:.0f} min of the {records[-1]['wall_time'] / 60:.0f}, "
    f"the rest evaluations of the valid and test splits"
)

# %% [markdown]
# ## (k) Beyond SGD: Adam and AMSGrad, from the series' reference
#
# The paper, and this toolkit by default, train with plain SGD. The series cites a paper about the
# optimizers that replaced it: Reddi, Kale & Kumar, *On the convergence of Adam and beyond*
# (ICLR 2018), with an erratum to the slides of its talk: "the exponent of beta inside the square
# root should be t−j instead of t−i", and k−j in AMSGrad's update, with 1 ≤ k ≤ t. This section
# derives both methods from that reference, shows what the erratum is about, and reproduces the
# paper's counterexample, in which Adam converges to the worst point.
#
# **One frame for all three.** With $g_t$ the gradient at step $t$ and $\alpha_t$ a step size, the
# paper writes an adaptive method as
# $$x_{t+1} = x_t - \alpha_t\, m_t / \sqrt{V_t},$$
# with $m_t$ a weighted average of $g_1 \dots g_t$ and $V_t$ one of their squares (per coordinate;
# every operation here is elementwise). SGD is $m_t = g_t$, $V_t = 1$. **Adam** takes exponential
# moving averages, $m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$ and
# $v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2$ from $m_0 = v_0 = 0$. Unrolling the second:
# $$v_t = (1-\beta_2) \sum_{j=1}^{t} \beta_2^{\,t-j}\, g_j^2 .$$
# This is where the erratum sits: the gradient of step $j$ has been decayed once by every step
# after it, $t - j$ times. The slides' $t - i$, with $i$ the coordinate, does not depend on the
# summation index $j$: it would weigh every past gradient alike, and $v_t$ would be no moving
# average at all.
#
# **The effective step size.** Coordinate $i$ moves by $\alpha_t\, m_{t,i} / \sqrt{v_{t,i}}$: the
# effective per-coordinate step size is
# $$\frac{\alpha_t}{\sqrt{v_{t,i}}} = \frac{\alpha_t}{\sqrt{(1-\beta_2) \sum_{j=1}^{t}
# \beta_2^{\,t-j}\, g_{j,i}^2}} ,$$ large for a coordinate whose recent gradients were small, small
# after large ones. With the right exponent, a large gradient's weight fades by $\beta_2$ a step, so
# after a spike the effective step size **grows back**. The paper's "primary cause for
# non-convergence" is exactly that: SGD (with a decreasing $\alpha_t$) and Adagrad (which divides
# by the root of the plain sum of all past $g^2$) never let the step size grow,
# $\Gamma_{t+1} = \sqrt{V_{t+1}}/\alpha_{t+1} - \sqrt{V_t}/\alpha_t \succeq 0$ (every entry
# $\ge 0$; $V_t$ is the diagonal matrix of the $v_{t,i}$),
# while Adam's $\Gamma$ can be negative. A rare large and informative gradient is then forgotten
# within a few steps, and the frequent small ones, taken with a large step, win.
#
# **AMSGrad** keeps the largest second moment seen so far, $\hat v_t = \max(\hat v_{t-1}, v_t)$,
# and divides by it instead:
# $$\hat v_t = \max_{1 \le k \le t}\, (1-\beta_2) \sum_{j=1}^{k} \beta_2^{\,k-j}\, g_j^2 ,
# \qquad x_{t+1} = x_t - \alpha_t\, m_t / \sqrt{\hat v_t},$$
# the erratum's $k - j$, with $1 \le k \le t$. The effective step size $\alpha_t / \sqrt{\hat v_t}$
# can no longer grow when $\alpha_t$ does not. The first cell checks the unrolled sums against the
# recursions, and what the slides' exponent would compute instead.

# %%
beta2, T = 0.7, 12
g = np.where(np.arange(1, T + 1) == 4, 10.0, 1.0)  # gradients of 1, and one of 10 at step 4
v, v_hat, recursion, running_max = 0.0, 0.0, [], []
for t in range(T):
    v = beta2 * v + (1 - beta2) * g[t] ** 2  # the recursion
    v_hat = max(v_hat, v)  # AMSGrad
    recursion.append(v)
    running_max.append(v_hat)
unrolled = [
    (1 - beta2) * sum(beta2 ** (t - j) * g[j - 1] ** 2 for j in range(1, t + 1))
    for t in range(1, T + 1)
]
amsgrad = [
    max(unrolled[k - 1] for k in range(1, t + 1)) for t in range(1, T + 1)
]  # max over 1 <= k <= t of the k - j sums
slides = [
    (1 - beta2) * sum(beta2 ** (t - 1) * g[j - 1] ** 2 for j in range(1, t + 1))
    for t in range(1, T + 1)
]  # exponent t - i, coordinate i = 1
print(
    "exponent t - j, unrolled vs recursion, largest difference:",
    f"{np.max(np.abs(np.array(unrolled) - recursion)):.1e}",
)
print(
    "exponent k - j, max over k vs AMSGrad's running max:     ",
    f"{np.max(np.abs(np.array(amsgrad) - running_max)):.1e}",
)
print(
    "exponent t - i instead (every past gradient weighed alike): v_t off by up to a factor",
    f"{np.max(np.array(recursion) / np.array(slides)):.0f}",
)
print("effective step 1/sqrt(v_t), Adam:   ", np.round(1 / np.sqrt(recursion), 2))
print("effective step 1/sqrt(v_t), AMSGrad:", np.round(1 / np.sqrt(running_max), 2))

# %% [markdown]
# **The counterexample.** Reddi et al. take the one-dimensional feasible set $\mathcal F = [-1, 1]$
# and the sequence of linear losses
# $$f_t(x) = \begin{cases} C x & t \bmod 3 = 1 \\ -x & \text{otherwise} \end{cases}, \qquad C = 3
# .$$ Over every three steps the losses add up to $(C - 2)\,x = x$, so the best fixed point is
# $x = -1$ and $x = +1$ is the worst. The gradient is $C$ once every three steps and $-1$ twice:
# the rare large gradient points the right way. With $\beta_1 = 0$, $\beta_2 = 1/(1 + C^2)$ and
# $\alpha_t = \alpha/\sqrt{t}$, each step is projected back onto $[-1, 1]$, with no bias correction,
# as in the paper. Adam's $v$ forgets the $C^2$ within a step or two, so its two moves of $+1$
# (gradient $-1$) are taken with a far larger effective step size than the one move of $-C$
# (gradient $C$); AMSGrad divides all three by the same $\hat v$, the largest $v$ so far (set by
# the spikes, about $0.9\, C^2$ here), and the move of $-C$ wins. In the printout, "x after $t$
# steps" is `xs[t]`, the point the plot shows at $t + 1$.


# %% figure="notebook1-adam-amsgrad"
def online(amsgrad, C=3.0, alpha=0.5, steps=3000, x=0.0):
    """Reddi et al.'s counterexample: x_t and the effective step size alpha_t / sqrt(v) of
    every step."""
    beta2 = 1 / (1 + C**2)  # beta1 = 0: m_t = g_t
    v = v_hat = 0.0
    xs, step_sizes = [x], []
    for t in range(1, steps + 1):
        g = C if t % 3 == 1 else -1.0  # the gradient of f_t at any x
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v)
        step_size = alpha / np.sqrt(t) / np.sqrt(v_hat if amsgrad else v)
        x = float(np.clip(x - step_size * g, -1.0, 1.0))  # the projection onto [-1, 1]
        xs.append(x)
        step_sizes.append(step_size)
    return np.array(xs), np.array(step_sizes)


adam_x, adam_step = online(amsgrad=False)
ams_x, ams_step = online(amsgrad=True)
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
t = np.arange(1, len(adam_x) + 1)  # x_1 = 0 is where both start
left.plot(t, adam_x, label="Adam", lw=0.9)
left.plot(t, ams_x, label="AMSGrad", lw=0.9)
left.axhline(-1, color="k", ls=":", lw=0.8)
left.set_xscale("log")
left.set_xlabel("step t")
left.set_ylabel("x_t")
left.set_ylim(-1.1, 1.1)
left.legend()
left.set_title("x_t on [-1, 1]: the optimum is -1, the worst point +1")
right.plot(range(1, 31), adam_step[:30] * np.sqrt(np.arange(1, 31)), "o-", ms=3, label="Adam")
right.plot(range(1, 31), ams_step[:30] * np.sqrt(np.arange(1, 31)), "s-", ms=3, label="AMSGrad")
right.set_xlabel("step t (the gradient is C at t = 1, 4, 7, ...)")
right.set_ylabel("effective step size x sqrt(t)")
right.set_yscale("log")
right.legend()
right.set_title("alpha / sqrt(v), the first 30 steps")
plt.tight_layout()
plt.show()
for name, xs in (("Adam", adam_x), ("AMSGrad", ams_x)):
    print(
        f"{name:8}: x after 10, 100, 1,000 and 3,000 steps: "
        + ", ".join(f"{xs[t]:+.3f}" for t in (10, 100, 1000, 3000))
        + "; average loss per step over the last 300: "
        f"{np.mean([(3.0 if t % 3 == 1 else -1.0) * xs[t - 1] for t in range(2701, 3001)]):+.3f}"
    )

# %% [markdown]
# Adam climbs to the boundary $+1$, the point with the largest total loss, and stays near it (each
# spike pulls it a little off); AMSGrad goes to the optimum $-1$. The right panel is the erratum
# made visible: Adam's effective step size falls at each step with gradient $C$ and grows back
# over the next two, by a factor of nearly $C$ (2.8 here: its $v$ keeps only $\beta_2 = 0.1$ of
# itself each step); AMSGrad's stays at the level the first spike set. (The last figures printed
# are the average loss per step near the end: $+1/3$ per step at $x = +1$, $-1/3$ at $x = -1$.)
#
# **In the toolkit.** `--set optimizer=adam` or `optimizer=amsgrad` (with `beta1`, `beta2`,
# `epsilon`; defaults 0.9, 0.999 and 1e-8) trains with these updates in every engine, after the
# same global-norm clipping as SGD, and with the learning-rate schedule of (g) as $\alpha$ (from
# the config's `learning_rate`, which for Adam wants to be far below SGD's 1: for example
# `--set learning_rate=0.002`). The
# update adds what the analysis leaves out and practice keeps: the bias corrections
# $1 - \beta_1^t$ and $1 - \beta_2^t$ of Kingma & Ba's Adam (the averages start at zero) and an
# $\epsilon$ added outside the square root, $\theta \leftarrow \theta - \alpha\,
# \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}$. The update is dense: an
# embedding row the batch did not use still moves by its decaying $m$, unlike SGD's update of (g).
# It is `torch.optim.Adam` with `amsgrad` off or on, and it
# is written once, in `ptb_lstm/optim.py`, for the NumPy engines; the TensorFlow and PyTorch
# engines write the same operations in the same order (Keras' own `Adam` places $\epsilon$
# elsewhere, so they do not use it), and the tests hold every engine to the reference engine
# within 1e-9 of the update after six float64 steps. AMSGrad's maximum is taken over the raw $v$,
# before its bias correction; the optimizer's state ($t$, $m$, $v$, $\hat v$) is saved in
# `model.npz`, so an interrupted run resumes exactly. The cell shows the update and checks three
# steps of it against the formulas above, with the corrections written out.

# %%
from ptb_lstm.optim import NumpyAdam

show_source(NumpyAdam.update)
config = PRESETS["tiny"].replace(optimizer="amsgrad", beta1=0.8, beta2=0.95, epsilon=1e-6)
optimizer = NumpyAdam(config, vocab_size=3, dtype=np.float64)
params = {
    n[2:]: np.zeros(a.shape) for n, a in optimizer.get_state().items() if n.startswith("m_")
}  # every parameter, zero
m = v = v_hat = x = 0.0
for t, g in enumerate((2.0, -0.5, 0.1), start=1):
    optimizer.update(
        params,
        {name: np.full_like(p, g) for name, p in params.items()},
        learning_rate=0.01,
        scale=1.0,
    )
    m = config.beta1 * m + (1 - config.beta1) * g
    v = config.beta2 * v + (1 - config.beta2) * g * g
    v_hat = max(v_hat, v)
    x -= (
        0.01
        * (m / (1 - config.beta1**t))
        / (np.sqrt(v_hat / (1 - config.beta2**t)) + config.epsilon)
    )
    print(f"t = {t}: by the formulas {x:+.12f}, by the toolkit {params['softmax_bias'][0]:+.12f}")

# %% [markdown]
# ## (l) Exercises
#
# Three tasks on what this part has shown. Each has a cell with a function for you to fill in,
# committed as a stub that returns `None`, and a cell that checks it: the check prints
# `not yet done` while the function returns `None`, `pass` when its answer agrees with the
# toolkit, and `WRONG` with what differs otherwise (an answer that raises an error is `WRONG`
# too, with the error). Replace `return None` by your code, then run the stub's cell and its
# check again. Worked solutions follow in (m), after all three, each run through the same check
# beside a wrong answer that the check refuses.
#
# 1. **Perplexity with the pure function.** Write `my_perplexity(params, ids, batch_size,
#    num_steps)`: the perplexity of the id stream `ids` as `ptb_lstm.evaluate.evaluate` computes
#    it (section (d)), with `step_function` of (g) for the forward pass (masks `None`; its
#    gradients are not needed). The state starts from zeros (`state` of L pairs of
#    `np.zeros((batch_size, H))`) and is carried from batch to batch; the batches come from
#    `batches(ids, batch_size, num_steps)`. Mind which loss `step_function` returns (averaged
#    over the rows) and what the perplexity divides by. The check compares it with `evaluate`
#    and the reference engine on 2,000 valid tokens, for two and three layers.
# 2. **The global norm from per-position rows.** TensorFlow and PyTorch hand back the
#    embedding's gradient as one row per input position (with the position's word id), not as a
#    dense [V, H] array: a word used three times in the batch has three rows. Write
#    `my_norm_from_rows(ids, rows, others)`: `ids` [N] the word of each position, `rows` [N, H]
#    the gradient of each position's embedding row, `others` the list of every other parameter's
#    gradient; return the global norm of (g), in which the embedding's gradient is the dense
#    [V, H] array, each word's rows summed (step 9). Do it without forming the [V, H] array
#    (`np.unique(ids, return_inverse=True)` and `np.add.at` on the distinct words' rows). The
#    check uses the ids of a PTB batch, where words repeat.
# 3. **A forget-gate bias.** Some implementations start the f block of every layer's bias at
#    +1 (section (b)). Write `my_forget_bias(params, value)`, a pure function that returns new
#    parameters equal to `params` except that `value` is added to the forget-gate block of every
#    `lstm_{l}_bias`, for any number of layers, leaving `params` unchanged. The check tries it on
#    two and three layers.

# %%
from ptb_lstm.evaluate import evaluate


def verdict(name, attempt, judge):
    """Run attempt(): None is "not yet done"; judge(result) returns "" when it is right, else
    what is wrong. Prints the verdict; returns True, False or None (not yet done)."""
    try:
        result = attempt()
    except Exception as error:  # an answer that fails is a wrong answer, not a broken notebook
        print(f"{name}: WRONG, it raised {type(error).__name__}: {error}")
        return False
    if result is None:
        print(f"{name}: not yet done (the function returns None)")
        return None
    problem = judge(result)
    print(f"{name}: " + (f"WRONG, {problem}" if problem else "pass"))
    return not problem


def check_perplexity(my_perplexity):
    ids = corpus.valid[:2001]
    for layers in (2, 3):
        config = PRESETS["tiny"].replace(num_layers=layers)
        params = init_params(config, corpus.vocab_size, np.float64)
        engine = ReferenceEngine(config, params, dtype="float64")
        expected = evaluate(engine, ids, config.batch_size, config.num_steps).perplexity

        def judge(got, expected=expected):
            error = relative_error(got, expected)
            return "" if error <= 1e-12 else f"{got:.4f} against {expected:.4f}"

        verdict(
            f"exercise 1, {layers} layers",
            lambda params=params, config=config: my_perplexity(
                params, ids, config.batch_size, config.num_steps
            ),
            judge,
        )


def check_norm_from_rows(my_norm_from_rows):
    config = PRESETS["small"]
    ids = next(batches(corpus.train, config.batch_size, config.num_steps))[0].ravel()  # [N]
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((ids.size, config.hidden_size))
    others = [rng.standard_normal((7, 5)), rng.standard_normal(11)]
    dense = np.zeros((corpus.vocab_size, config.hidden_size))
    np.add.at(dense, ids, rows)
    expected = np.sqrt(np.sum(dense**2) + sum(np.sum(g**2) for g in others))
    print(f"{ids.size} positions, {np.unique(ids).size} distinct words")

    def judge(got):
        error = relative_error(got, expected)
        return "" if error <= 1e-12 else f"{float(got):.6f} against {expected:.6f}"

    verdict("exercise 2", lambda: my_norm_from_rows(ids, rows, others), judge)


def check_forget_bias(my_forget_bias):
    for layers in (2, 3):
        config = PRESETS["tiny"].replace(num_layers=layers)
        params = init_params(config, corpus.vocab_size, np.float64)
        before = {n: a.copy() for n, a in params.items()}
        H = config.hidden_size

        def judge(got, params=params, before=before, H=H):
            if any((params[n] != before[n]).any() for n in params):
                return "it changed the parameters it was given"
            if set(got) != set(params):
                return "it returns other names than it was given"
            for name in params:
                expected = before[name].copy()
                if name.endswith("_bias") and name.startswith("lstm_"):
                    expected[H : 2 * H] += 1.0  # the f block of [i, f, g, o]
                if not np.array_equal(got[name], expected):
                    return f"{name} is not as expected"
            return ""

        verdict(
            f"exercise 3, {layers} layers",
            lambda params=params: my_forget_bias(params, 1.0),
            judge,
        )


# %%
def my_perplexity(params, ids, batch_size, num_steps):
    return None  # your code here


check_perplexity(my_perplexity)


# %%
def my_norm_from_rows(ids, rows, others):
    return None  # your code here


check_norm_from_rows(my_norm_from_rows)


# %%
def my_forget_bias(params, value):
    return None  # your code here


check_forget_bias(my_forget_bias)

# %% [markdown]
# ## (m) Solutions to the exercises
#
# ---
#
# **Stop here until you have tried them: the answers follow.**
#
# 1. The loss `step_function` returns is averaged over the B rows, so a batch's summed NLL is
#    `loss * batch_size`; the perplexity divides the total by every target token, steps × B × T
#    (section (d)). The state goes from each call into the next. The wrong answer restarts every
#    batch from zeros: the state then no longer summarises the text before each row, and the
#    perplexity differs.
# 2. `np.unique(ids, return_inverse=True)` numbers the distinct words; `np.add.at` sums each
#    word's rows into one; the norm adds their squares once. The wrong answer squares the rows
#    as they come, which counts $\lVert a \rVert^2 + \lVert b \rVert^2$ for a word used twice
#    instead of $\lVert a + b \rVert^2$.
# 3. The f block is columns H to 2H of the bias (blocks i, f, g, o); the copy keeps `params` as
#    it was. The wrong answer adds to the g block, columns 2H to 3H.


# %%
def solution_perplexity(params, ids, batch_size, num_steps):
    L = sum(name.endswith("_recurrent_kernel") for name in params)
    H = params["lstm_0_recurrent_kernel"].shape[0]
    state = [(np.zeros((batch_size, H)), np.zeros((batch_size, H))) for _ in range(L)]
    total, steps = 0.0, 0
    for inputs, targets in batches(ids, batch_size, num_steps):
        loss, _, state = step_function(params, state, inputs, targets)
        total += loss * batch_size  # the batch's summed NLL
        steps += 1
    return float(np.exp(total / (steps * batch_size * num_steps)))


def wrong_perplexity(params, ids, batch_size, num_steps):  # restarts the state every batch
    L = sum(name.endswith("_recurrent_kernel") for name in params)
    H = params["lstm_0_recurrent_kernel"].shape[0]
    zeros = [(np.zeros((batch_size, H)), np.zeros((batch_size, H))) for _ in range(L)]
    losses = [step_function(params, zeros, x, y)[0] for x, y in batches(ids, batch_size, num_steps)]
    return float(np.exp(sum(losses) * batch_size / (len(losses) * batch_size * num_steps)))


def solution_norm_from_rows(ids, rows, others):
    words, position_word = np.unique(ids, return_inverse=True)
    summed = np.zeros((words.size, rows.shape[1]))
    np.add.at(summed, position_word, rows)  # one row per distinct word
    return float(np.sqrt(np.sum(summed**2) + sum(np.sum(g**2) for g in others)))


def wrong_norm_from_rows(ids, rows, others):  # a word used twice counted as two rows
    return float(np.sqrt(np.sum(rows**2) + sum(np.sum(g**2) for g in others)))


def solution_forget_bias(params, value):
    new = {name: array.copy() for name, array in params.items()}
    for name, array in new.items():
        if name.startswith("lstm_") and name.endswith("_bias"):
            H = array.size // 4
            array[H : 2 * H] += value  # blocks i, f, g, o: f is the second
    return new


def wrong_forget_bias(params, value):  # the g block instead
    new = {name: array.copy() for name, array in params.items()}
    for name, array in new.items():
        if name.startswith("lstm_") and name.endswith("_bias"):
            H = array.size // 4
            array[2 * H : 3 * H] += value
    return new


print("--- the solutions")
check_perplexity(solution_perplexity)
check_norm_from_rows(solution_norm_from_rows)
check_forget_bias(solution_forget_bias)
print("--- the wrong answers")
check_perplexity(wrong_perplexity)
check_norm_from_rows(wrong_norm_from_rows)
check_forget_bias(wrong_forget_bias)

# %% [markdown]
# The paper's 114.5 test perplexity is reproduced by a model written from scratch in NumPy.
# Part II trains the same model with TensorFlow's automatic differentiation (`GradientTape`)
# instead of the hand-written BPTT of (e); Part III builds it as a TensorFlow graph; Part IV
# trains it with PyTorch's autograd and `nn.LSTM`.
