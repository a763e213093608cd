# %% [markdown]
# # Part V — inside the trained model
#
# The earlier parts build the model and train it; this one looks at what the trained model does
# with words, after Karpathy, Johnson & Fei-Fei, *Visualizing and understanding recurrent
# networks* (2015). It runs the functions behind `ptb-lstm look` (`ptb_lstm.look`,
# [docs/inside.md](../docs/inside.md)) on two checkpoints: the paper's small model (no dropout)
# and its medium model (dropout 0.5), and asks what regularisation changed inside.
#
# Every activation below is the reference engine's own forward pass (Part I's
# `numpy_reference.py`), read one word at a time as one stream from a zero state; the test
# suite holds those activations to the LSTM equations written out by hand, and the sum of the
# surprisals to `ptb-lstm score`.
#
# The checkpoints are read from `$PTB_LSTM_SMALL_CKPT` and `$PTB_LSTM_MEDIUM_CKPT` (the
# `model.npz` of a finished `ptb-lstm train --config small` and `--config medium`). Without
# them, the notebook stands in each config's initial weights (uniform in ±init_scale), so
# that every cell runs; their pictures show an untrained model, not what the paper's models
# learned.
#
# Contents: (a) the two models · (b) what each word costs · (c) the cells while reading ·
# (d) gate saturation · (e) cells that follow the text · (f) neighbours in the embedding and
# the softmax · (g) small against medium, measured.

# %%
import os
import pathlib
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from ptb_lstm import checkpoint, look
from ptb_lstm import look_figures as figures
from ptb_lstm.config import PRESETS
from ptb_lstm.data import load_corpus, locate_data_dir
from ptb_lstm.params import init_params

LIMIT = int(os.environ.get("PTB_LSTM_INSIDE_WORDS", "20000"))  # valid words read in (d)-(g)
data_dir = locate_data_dir()  # $PTB_DATA_DIR, or the user cache (downloading once)


def stand_in(config):
    """A checkpoint of ``config``'s initial weights, when no trained one is given."""
    vocab = load_corpus(data_dir).vocab
    path = pathlib.Path(tempfile.mkdtemp()) / f"{config}.npz"
    params = init_params(PRESETS[config], len(vocab))
    checkpoint.save(path, checkpoint.Checkpoint(params, vocab, PRESETS[config]))
    return path


paths = {}
for name in ("small", "medium"):
    given = os.environ.get(f"PTB_LSTM_{name.upper()}_CKPT")
    paths[name] = pathlib.Path(given) if given else stand_in(name)
    print(f"{name}: {paths[name].name if given else 'initial weights, untrained'}")
models = {name: checkpoint.load(path) for name, path in paths.items()}
engines = {name: look.reference_engine(ckpt) for name, ckpt in models.items()}

# %% [markdown]
# ## (a) The two models
#
# Same data, same vocabulary, same two layers; the medium model is wider and is trained with
# dropout on its non-recurrent connections (Part I, (g)).

# %%
for name, ckpt in models.items():
    c, progress = ckpt.config, ckpt.progress
    trained = f"epoch {progress['epoch']}, step {progress['step']}" if progress else "untrained"
    print(f"{name:7} {c.num_layers} x {c.hidden_size} units, dropout {c.dropout}, {trained}")

# %% [markdown]
# ## (b) What each word costs
#
# A model's perplexity is the exponential of its mean surprisal, −log p(word | the words
# before it). Spread over a text, surprisal shows where the model is sure (`<eos>` after a
# finished sentence, `N` after `$`) and where it is not (names, the first word of a sentence).

# %%
TEXT = (
    "the company said it expects profit to rise N N this year .\n"
    "shares of the bank fell $ N to $ N in new york stock exchange composite trading ."
)
readings = {name: look.read_text(engines[name], models[name], TEXT, layer=2) for name in models}
for name, reading in readings.items():
    print(f"{name}: perplexity {reading.perplexity:.1f} over {len(reading.words)} tokens")
figures.draw_surprisal(readings["small"], 60)
plt.show()

# %% [markdown]
# Word by word, the two models side by side (bits):

# %%
small, medium = readings["small"], readings["medium"]
for word, a, b in zip(small.words, small.surprisal, medium.surprisal, strict=True):
    print(f"{word:12} {a / np.log(2):6.2f} {b / np.log(2):6.2f}")

# %% [markdown]
# ## (c) The cells while reading
#
# The top layer's cell state c and output h after each word, for the 40 units whose c varies
# most over the text. Look for rows that change at `<eos>`, and rows that change at `N` or `$`.

# %%
figures.draw_activations(readings["small"], 40)
plt.show()

# %%
figures.draw_activations(readings["medium"], 40)
plt.show()

# %% [markdown]
# ## (d) Gate saturation
#
# Over the first words of the valid split: for each gate, a dot per unit at (fraction of its
# values below 0.1, fraction above 0.9). Karpathy et al. found forget gates far to the top
# (units that keep their cell for long) and few gates near the origin in the upper layers.

# %%
corpus = {}
for name, ckpt in models.items():
    ids = load_corpus(data_dir, vocab=ckpt.vocab).valid
    corpus[name] = look.read_corpus(engines[name], ckpt.vocab, ids, "valid", LIMIT)
fig, axes = plt.subplots(2, 3, figsize=(12, 8))
for row, name in enumerate(corpus):
    figures.draw_saturation(corpus[name], axes[row], name)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## (e) Cells that follow the text
#
# The cells whose c correlates most with the position in the sentence, and with having just
# read a number (`N`). PTB's text holds no quotation marks or parentheses, so those features
# are absent here ([docs/inside.md](../docs/inside.md)).

# %%
for name, reading in corpus.items():
    print(name)
    for feature, found in look.top_cells(reading, 3).items():
        cells = ", ".join(
            f"layer {c['layer']} unit {c['unit']} r={c['r']:+.2f}" for c in found["cells"]
        )
        print(f"  {feature:18} {cells or found['why_none']}")

# %% [markdown]
# The best sentence-position cell of the small model, over the text of (b):

# %%
best = look.top_cells(corpus["small"], 1)["sentence_position"]["cells"][0]
reading = look.read_text(engines["small"], models["small"], TEXT, layer=best["layer"])
fig, ax = plt.subplots(figsize=(11, 3))
ax.plot(reading.cells[:, best["unit"]], marker="o")
ax.set_xticks(range(len(reading.cells)), reading.words[: len(reading.cells)], rotation=90)
ax.set(ylabel="c", title=f"small, layer {best['layer']}, unit {best['unit']} (r = {best['r']:.2f})")
ax.grid(True, alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## (f) Neighbours in the embedding and in the softmax
#
# The embedding row of a word is how the model reads it; the softmax column, how it predicts
# it. Words read alike need not be predicted alike.

# %%
for word in ("stock", "president", "billion"):
    for name, ckpt in models.items():
        found = look.neighbours(ckpt, word, 8)
        shared = found["overlap"]
        print(f"{name:7} {word}: embedding {[w for w, _ in found['embedding']]}")
        print(f"{'':7} {word}: softmax   {[w for w, _ in found['softmax']]} (shared {shared})")

# %% [markdown]
# ## (g) Small against medium, measured
#
# The numbers behind (d) and more, per layer: mean gate saturation, how often a unit's output
# is silent (|h| < 0.1) and how large its cell is. `benchmarks/inside_compare.py` writes the
# same numbers, with the figures, for the docs.

# %%
summaries = {name: look.corpus_summary(reading) for name, reading in corpus.items()}
for layer in summaries["small"]:
    for key in ("mean_silent_fraction", "mean_abs_cell"):
        a, b = summaries["small"][layer][key], summaries["medium"][layer][key]
        print(f"{layer} {key:22} small {a:.3f}  medium {b:.3f}")
    for gate in look.GATES:
        a, b = (summaries[n][layer]["gates"][gate]["mean_above_high"] for n in ("small", "medium"))
        print(f"{layer} gate {gate} > 0.9{'':12} small {a:.3f}  medium {b:.3f}")
