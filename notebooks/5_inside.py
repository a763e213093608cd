# %% [markdown]
# # Part V — inside the trained model
#
# Parts I to IV build the model and train it; this part looks at what a trained model does with
# words, after Karpathy, Johnson & Fei-Fei, *Visualizing and understanding recurrent networks*
# (2015). It uses the functions behind `ptb-lstm look` (`ptb_lstm.look`,
# [docs/inside.md](../docs/inside.md)) on two checkpoints: the paper's small model (2 × 200
# units, no dropout) and its medium model (2 × 650 units, dropout 0.5), and asks what
# regularisation changed inside. Each measurement is first done by hand, in a few lines of
# NumPy on the forward pass of Part I, and checked against the function that the command uses;
# then the function is used on many words.
#
# Every activation below comes from the reference engine's forward pass (Part I's
# `numpy_reference.py`), reading the words one stream at a time from a zero state: the state
# after a word is carried to the next, as in evaluation, and no dropout is applied.
#
# The checkpoints are read from `$PTB_LSTM_SMALL_CKPT` and `$PTB_LSTM_MEDIUM_CKPT` (the
# `model.npz` of `ptb-lstm train --config small` and of `--config medium`). Without them, the
# notebook trains each config for a short run (100 steps, or `$PTB_LSTM_NOTEBOOK_STEPS`) as a
# stand-in, so that every cell runs; the pictures of a stand-in show a model that has barely
# started to learn, not what the paper's models learned. The figures in
# [docs/inside.md](../docs/inside.md) are those of the trained models.
#
# Contents: (a) the two models · (b) what each word costs · (c) the cells while reading ·
# (d) gate saturation · (e) cells that follow the text · (f) neighbours in the embedding and
# the softmax · (g) small against medium, measured · (h) exercises · (i) solutions.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from ptb_lstm import checkpoint, dropout, look
from ptb_lstm import look_figures as figures
from ptb_lstm.config import PRESETS
from ptb_lstm.data import batches, load_corpus, locate_data_dir
from ptb_lstm.engines import create_engine
from ptb_lstm.params import init_params

STEPS = int(os.environ.get("PTB_LSTM_NOTEBOOK_STEPS", "100"))  # steps of a stand-in's run
LIMIT = int(os.environ.get("PTB_LSTM_INSIDE_WORDS", "20000"))  # valid words read in (d)-(g)
corpus = load_corpus(locate_data_dir())  # $PTB_DATA_DIR, or the user cache (downloading once)
print(
    f"PTB: {len(corpus.train):,} training tokens, vocabulary {corpus.vocab_size:,}; "
    f"short runs of {STEPS} steps for a stand-in; {LIMIT:,} valid words read in (d)-(g)"
)


def show(fig):
    """Draw ``fig`` in the notebook and close it (the figures module draws off-screen)."""
    display(fig)
    plt.close(fig)


def stand_in(name):
    """The ``name`` config trained for STEPS steps with the numpy engine, dropout included."""
    config = PRESETS[name]
    engine = create_engine("numpy", config, init_params(config, corpus.vocab_size))
    engine.reset_state(config.batch_size)
    stream = batches(corpus.train, config.batch_size, config.num_steps)
    for step, (inputs, targets) in zip(range(STEPS), stream, strict=False):  # the first STEPS
        masks = dropout.step_masks(config, step)
        engine.train_step(inputs, targets, config.learning_rate, masks)
    progress = {"epoch": 1, "step": STEPS}
    return checkpoint.Checkpoint(engine.get_params(), corpus.vocab, config, progress)


models = {}
for name in ("small", "medium"):
    given = os.environ.get(f"PTB_LSTM_{name.upper()}_CKPT")
    models[name] = checkpoint.load(given) if given else stand_in(name)
    print(f"{name}: {'the checkpoint given' if given else f'a stand-in, {STEPS} steps'}")
engines = {name: look.reference_engine(ckpt) for name, ckpt in models.items()}

# %% [markdown]
# ## (a) The two models
#
# Same data, same vocabulary of 10,000 words, same two layers. The medium model is wider and
# is trained with dropout on its non-recurrent connections (Part I, (g)); the small one has no
# dropout and over-fits: after 13 epochs its training perplexity is far below its valid one.

# %%
for name, ckpt in models.items():
    c, progress = ckpt.config, ckpt.progress
    size = sum(p.size for p in ckpt.params.values())
    trained = f"epoch {progress.get('epoch')}, step {progress.get('step')}" if progress else "?"
    print(
        f"{name:7} {c.num_layers} x {c.hidden_size} units, dropout {c.dropout}, "
        f"{size / 1e6:.1f} M parameters, {ckpt.dtype}; trained to {trained}"
    )

# %% [markdown]
# ## (b) What each word costs
#
# The model gives, after reading words $w_1 \dots w_{k-1}$, a probability to every word of the
# vocabulary for the next one. The **surprisal** of the word that comes is
#
# $$s_k = -\log p(w_k \mid w_1 \dots w_{k-1})$$
#
# in nats (natural logarithm); divided by $\ln 2$ it is in bits: a word the model gave
# probability 1/2 costs one bit, 1/1024 ten bits. The text's log-likelihood is
# $-\sum_k s_k$, and its perplexity is $\exp(\frac1N \sum_k s_k)$, the quantity that
# training lowers (Part I, (d)). Spread over a text, surprisal shows where the model is sure
# (`<eos>` after a finished sentence, `N` after `$`) and where it is not (names, the first
# word of a sentence).
#
# The text is read as if after a finished sentence: its first input is `<eos>`, which
# predicts the first word; each sentence ends with `<eos>`, which is a word to predict too.
# `look.read_text` gives the surprisal of every word and, for one layer, c and h after each.

# %%
TEXT = (
    "the company said it expects profit to rise N N this year .\n"
    "shares of the bank fell $ N to $ N in new york stock exchange composite trading ."
)
readings = {name: look.read_text(engines[name], models[name], TEXT, layer=2) for name in models}
for name, reading in readings.items():
    print(f"{name}: perplexity {reading.perplexity:.1f} over {len(reading.words)} tokens")

# %% [markdown]
# **By hand.** The same numbers from one forward pass of the reference engine: the ids as one
# batch row, a zero state, the logits of every position, their log-softmax (Part I, (d)). The
# ids count from 0: `ids[0]` is the leading `<eos>` and `ids[k]` is $w_k$, so the logits at
# position $k$ (after reading `ids[0..k]`) predict `ids[k + 1]`, and $s_{k+1}$ is minus the
# log-probability they give it. The last input, the text's final `<eos>`, predicts nothing.

# %%
engine, ckpt = engines["small"], models["small"]
words, read_as, ids = look.text_ids(TEXT, ckpt.vocab, "TEXT")
zero = [(np.zeros((1, engine.hidden_size), engine.np_dtype),) * 2] * engine.num_layers
fwd = engine.forward(np.asarray(ids)[None, :], zero)  # logits [T, 1, V]
log_p = engine.log_softmax(fwd.logits[:, 0].astype(np.float64))  # [T, V]
by_hand = -log_p[np.arange(len(ids) - 1), ids[1:]]  # position k predicts ids[k + 1]
reading = readings["small"]
print(
    f"{len(by_hand)} surprisals; largest difference from read_text: "
    f"{np.abs(by_hand - reading.surprisal).max():.1e} nats"
)
print(f"perplexity exp(mean): {np.exp(by_hand.mean()):.4f} against {reading.perplexity:.4f}")
print(
    f"words read as <unk>: {[w for w, r in zip(words, read_as, strict=True) if w != r] or 'none'}"
)

# %% [markdown]
# `read_text` reads in chunks of 128 words, carrying the state from one chunk to the next, so
# that a long text needs bounded memory; for a text this short it is the single pass above, and
# the two agree to the last bit. The two models, word by word:

# %% figure="notebook5-surprisal"
small, medium = readings["small"], readings["medium"]
bits = {name: r.surprisal / np.log(2) for name, r in readings.items()}
fig, ax = plt.subplots(figsize=(12, 3.8))
x = np.arange(len(small.words))
for offset, name in ((-0.2, "small"), (0.2, "medium")):
    label = f"{name} (perplexity {readings[name].perplexity:.1f})"
    ax.bar(x + offset, bits[name], width=0.4, label=label)
ax.set_xticks(x, small.words, rotation=90, fontsize=8)
ax.set(ylabel="surprisal (bits)", title="-log2 p(word | the words before it)")
ax.legend()
ax.grid(True, axis="y", alpha=0.3)
fig.tight_layout()
show(fig)

# %%
for word, a, b in zip(small.words, bits["small"], bits["medium"], strict=True):
    print(f"{word:12} small {a:6.2f}  medium {b:6.2f}  bits")

# %% [markdown]
# ## (c) The cells while reading
#
# The equations of Part I, (c), for one layer at time $t$, with $z = x(t) W + h(t-1) U + b$
# split into four blocks of H:
#
# $$i = \sigma(z_i),\quad f = \sigma(z_f),\quad g = \tanh(z_g),\quad o = \sigma(z_o),$$
# $$c(t) = f \odot c(t-1) + i \odot g,\qquad h(t) = o \odot \tanh(c(t)).$$
#
# The cell $c$ is the memory: the forget gate $f$ decides how much of it survives a word, the
# input gate $i$ how much of the candidate $g$ is written; the output gate $o$ decides how much
# of it is shown as $h$, which the next layer (or the softmax) reads. `look.read_stream` yields,
# per chunk of words, every layer's h, c, i, f, g and o after each word. The numbers the
# command reports must be the ones these equations give: first, a check that they are.

# %%
part = next(look.read_stream(engines["small"], np.asarray(ids)))
for number, layer in enumerate(part.layers, start=1):
    c_before = np.vstack([np.zeros((1, engine.hidden_size)), layer["c"][:-1]])
    c_rule = layer["f"] * c_before + layer["i"] * layer["g"]
    h_rule = layer["o"] * np.tanh(layer["c"])
    gates = np.stack([layer[g] for g in "ifo"])
    print(
        f"layer {number}: |c - (f c(t-1) + i g)| <= {np.abs(layer['c'] - c_rule).max():.1e}, "
        f"|h - o tanh(c)| <= {np.abs(layer['h'] - h_rule).max():.1e}, "
        f"gates in [{gates.min():.3f}, {gates.max():.3f}]"
    )

# %% [markdown]
# The top layer's c and h after each word, for the 40 units whose c varies most over the text:
# a row per unit, a column per word, red positive and blue negative. Look for rows that change
# at `<eos>` (a unit that marks the sentence's end), rows that change at `N` or `$` (units that
# track numbers), and rows that drift over the sentence (units that count).

# %% figure="notebook5-activations-small"
show(figures.draw_activations(readings["small"], 40))

# %% figure="notebook5-activations-medium"
show(figures.draw_activations(readings["medium"], 40))

# %% [markdown]
# ## (d) Gate saturation
#
# A gate is **saturated** when its sigmoid is near 0 or near 1: near 1 a forget gate keeps its
# cell as it is, near 0 it wipes it; an input gate near 0 writes nothing. Karpathy et al.
# counted, for each unit, the fraction of the words after which its gate is below 0.1
# (left-saturated) and above 0.9 (right-saturated), and plotted a dot per unit: the first
# fraction across ($x$), the second up ($y$). A dot near the origin is a gate that decides
# softly, one near the top-left is one that is almost always open, a dot on the line
# $x + y = 1$ is always at one end or the other.
#
# **By hand**, the forget gate of layer 1 over the first 512 valid words: read the stream, stack
# each chunk's f, and count.

# %%
valid = {
    name: load_corpus(locate_data_dir(), vocab=ckpt.vocab).valid for name, ckpt in models.items()
}
n = min(512, LIMIT)
f_values = np.concatenate(
    [part.layers[0]["f"] for part in look.read_stream(engines["small"], valid["small"][:n])]
)  # [n, H]
below, above = (f_values < 0.1).mean(axis=0), (f_values > 0.9).mean(axis=0)
counted = look.read_corpus(engines["small"], models["small"].vocab, valid["small"], "valid", n)
forget = look.GATES.index("f")
print(
    f"{f_values.shape[0]} words x {f_values.shape[1]} units; largest difference from "
    f"read_corpus: below {np.abs(below - counted.low[0, forget]).max():.1e}, "
    f"above {np.abs(above - counted.high[0, forget]).max():.1e}"
)

# %% [markdown]
# `read_corpus` counts the same way chunk by chunk, so that 20,000 words or a whole split need
# no more memory than 128. Over the first LIMIT words of the valid split, both models:

# %% figure="notebook5-saturation"
corpus_readings = {
    name: look.read_corpus(engines[name], models[name].vocab, valid[name], "valid", LIMIT)
    for name in models
}
fig, axes = plt.subplots(2, 3, figsize=(12, 8))
for row, name in enumerate(corpus_readings):
    figures.draw_saturation(corpus_readings[name], axes[row], name)
fig.tight_layout()
show(fig)

# %% [markdown]
# ## (e) Cells that follow the text
#
# Some cells of a trained LSTM follow a property of the text that nobody labelled: Karpathy et
# al. found cells that count the position in a line, or switch on inside quotes. To find them,
# correlate each cell's $c$ with a feature of each word read, over many words: the Pearson
# correlation of a unit's values $x_t$ with the feature's $y_t$ is
#
# $$r = \frac{\sum_t (x_t - \bar x)(y_t - \bar y)}
#          {\sqrt{\sum_t (x_t - \bar x)^2 \, \sum_t (y_t - \bar y)^2}},$$
#
# between −1 and 1. The features (`look.FeatureTracker`): the word's position in its sentence
# (1 for its first word, the closing `<eos>` last), whether it is `N` (PTB's token for every
# number), and whether it lies inside a quotation or inside parentheses. PTB's
# language-modelling text holds no quotation marks or parentheses, so those two are absent.
#
# **By hand** for the position, over the first 512 valid words, layer 1: the features of each
# word, the cells, and `np.corrcoef`, against what `read_corpus` found with running sums.

# %%
tracker = look.FeatureTracker()
vocab = models["small"].vocab
position = tracker([vocab[i] for i in valid["small"][:n]])[:, 0]  # [n]
c_values = np.concatenate(
    [part.layers[0]["c"] for part in look.read_stream(engines["small"], valid["small"][:n])]
).astype(np.float64)  # [n, H]
with np.errstate(invalid="ignore", divide="ignore"):  # a unit that never varies has no r
    r_by_hand = np.array([np.corrcoef(unit, position)[0, 1] for unit in c_values.T])
r_counted = counted.correlation[0, look.FEATURES.index("sentence_position")]
print(
    f"positions 1..{int(position.max())}; largest difference in r: "
    f"{np.nanmax(np.abs(r_by_hand - r_counted)):.1e}"
)
print(
    f"unit of largest |r| in layer 1: {int(np.nanargmax(np.abs(r_by_hand)))}, "
    f"r = {r_by_hand[np.nanargmax(np.abs(r_by_hand))]:+.3f}"
)

# %% [markdown]
# Over LIMIT words, the three cells of each model (either layer) most correlated with each
# feature:

# %%
for name, reading in corpus_readings.items():
    print(name)
    for feature, found in look.top_cells(reading, 3).items():
        cells = ", ".join(
            f"layer {c['layer']} unit {c['unit']} r={c['r']:+.2f}" for c in found["cells"]
        )
        print(f"  {feature:18} {cells or found['why_none']}")

# %% [markdown]
# The best sentence-position cell of each model, over the text of (b): a cell that counts rises
# (or falls) word by word and jumps back after `<eos>`.

# %% figure="notebook5-position-cell"
fig, axes = plt.subplots(1, 2, figsize=(13, 3.4))
for ax, name in zip(axes, models, strict=True):
    best = look.top_cells(corpus_readings[name], 1)["sentence_position"]["cells"][0]
    reading = look.read_text(engines[name], models[name], TEXT, layer=best["layer"])
    ax.plot(reading.cells[:, best["unit"]], marker="o", ms=3)
    ax.set_xticks(
        range(len(reading.cells)), reading.words[: len(reading.cells)], rotation=90, fontsize=7
    )
    ax.set(
        ylabel="c",
        title=f"{name}: layer {best['layer']}, unit {best['unit']} "
        f"(r = {best['r']:+.2f} over {LIMIT:,} words)",
    )
    ax.grid(True, alpha=0.3)
fig.tight_layout()
show(fig)

# %% [markdown]
# ## (f) Neighbours in the embedding and in the softmax
#
# Two matrices hold a vector per word: the embedding $E$ [V, H], whose row $E[w]$ is how the
# model **reads** $w$, and the softmax kernel $W_s$ [H, V], whose column $W_s[:, w]$ is how it
# **predicts** $w$ (its logit is $x_{top} \cdot W_s[:, w] + b_w$). Words are near when their
# vectors point the same way: the cosine $\frac{u \cdot v}{\|u\| \|v\|}$. Words predicted alike
# are those that can follow the same contexts (`billion` and `million` after `$ N`); words
# read alike are those that move the state alike, after which the model expects similar
# words. The two lists need not agree.
#
# **By hand** for one word, against `look.neighbours`:

# %%
ckpt = models["small"]
row = ckpt.vocab.index("billion")
E = ckpt.params["embedding"].astype(np.float64)
cosine = E @ E[row] / (np.linalg.norm(E, axis=1) * np.linalg.norm(E[row]))
cosine[row] = -np.inf  # not its own neighbour
mine = [ckpt.vocab[k] for k in np.argsort(-cosine)[:8]]
print("by hand:        ", mine)
print("look.neighbours:", [w for w, _ in look.neighbours(ckpt, "billion", 8)["embedding"]])

# %%
for word in ("stock", "president", "billion"):
    for name, ckpt in models.items():
        found = look.neighbours(ckpt, word, 8)
        print(f"{name:7} {word}: embedding {[w for w, _ in found['embedding']]}")
        print(
            f"{'':7} {word}: softmax   {[w for w, _ in found['softmax']]} "
            f"(shared {found['overlap']})"
        )

# %% [markdown]
# ## (g) Small against medium, measured
#
# The numbers behind (d), per layer: each gate's mean fraction of values above 0.9 and below
# 0.1, how often a unit's output is silent ($|h| < 0.1$) and how large its cell is
# ($\overline{|c|}$). `benchmarks/inside_compare.py` writes the same numbers, with figures, for
# the docs; [docs/inside.md](../docs/inside.md#small-against-medium-what-dropout-changed-inside)
# says what they show for the trained models.

# %%
summaries = {name: look.corpus_summary(reading) for name, reading in corpus_readings.items()}
for layer in summaries["small"]:
    for key in ("mean_silent_fraction", "mean_abs_cell"):
        a, b = summaries["small"][layer][key], summaries["medium"][layer][key]
        print(f"{layer} {key:24} small {a:.3f}  medium {b:.3f}")
    for gate in look.GATES:
        for end, key in (("> 0.9", "mean_above_high"), ("< 0.1", "mean_below_low")):
            a, b = (summaries[n][layer]["gates"][gate][key] for n in ("small", "medium"))
            print(f"{layer} gate {gate} {end}{'':14} small {a:.3f}  medium {b:.3f}")

# %% figure="notebook5-compare"
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
labels = [f"{gate} {end}" for gate in look.GATES for end in ("< 0.1", "> 0.9")]
for ax, layer in zip(axes, summaries["small"], strict=True):
    x = np.arange(len(labels))
    for offset, name in ((-0.2, "small"), (0.2, "medium")):
        gates = summaries[name][layer]["gates"]
        values = [gates[g][k] for g in look.GATES for k in ("mean_below_low", "mean_above_high")]
        ax.bar(x + offset, values, width=0.4, label=name)
    ax.set_xticks(x, labels)
    ax.set(title=f"{layer}: mean fraction of a gate's values at each end")
    ax.grid(True, axis="y", alpha=0.3)
axes[0].legend()
fig.tight_layout()
show(fig)

# %% [markdown]
# ## (h) Exercises
#
# As in the other parts: each function below is committed as a stub that returns `None`; its
# check prints `not yet done` while it does, `pass` when the answer is right and `WRONG` with
# what differs otherwise (an answer that raises is `WRONG`, with the error). Replace
# `return None` by your code and run the stub's cell again. The solutions follow in (i), each
# run through the same check beside a wrong answer that the check refuses. Use NumPy and the
# engine's `forward` and `log_softmax`; not `ptb_lstm.look`, which the checks compare with.
#
# 1. **Surprisal.** Write `my_surprisal(engine, ids)`: `ids` a list of N word ids whose first
#    is `<eos>`; return the surprisal in nats of `ids[1:]`, each given the ids before it, read
#    from a zero state: N − 1 floats (float64). The check compares with `look.read_text` on a
#    text of 300 words, longer than one of its chunks.
# 2. **Saturation.** Write `my_saturation(values)`: `values` [T, H] a gate's values after T
#    words; return `(below, above)`, each [H]: per unit, the fraction of the T values strictly
#    below 0.1 and strictly above 0.9. The check first tries it on made-up values whose counts
#    it knows (0.1 and 0.9 themselves among them), then compares with `look.read_corpus` for
#    every gate of both layers.
# 3. **Correlation.** Write `my_correlation(values, feature)`: `values` [T, H], `feature` [T];
#    return [H], the Pearson r of each unit with the feature, NaN for a unit whose T values
#    are all equal. The check first tries made-up units whose r it knows (1, −1 and a constant
#    unit), then compares with `look.read_corpus` for the sentence position.
# 4. **Nearest words.** Write `my_nearest(vectors, row, count)`: `vectors` [V, D] (the
#    embedding, or the softmax kernel transposed so that a word is a row); return the `count`
#    row indices (a list or an array) of highest cosine with row `row`, best first, `row`
#    itself left out. The check compares with `look.neighbours` in both matrices for three
#    words.


# %%
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


# The first 300 tokens of the test split, a line per sentence (the text as a user would give it).
CHECK_TEXT = " ".join(models["small"].vocab[i] for i in corpus.test[:300]).replace(" <eos> ", "\n")
CHECK_WORDS = min(2000, LIMIT)
check_engine, check_model = engines["small"], models["small"]
check_parts = list(look.read_stream(check_engine, valid["small"][:CHECK_WORDS], with_logits=False))
check_reading = look.read_corpus(
    check_engine, check_model.vocab, valid["small"], "valid", CHECK_WORDS
)


def check_surprisal(my_surprisal):
    expected = look.read_text(check_engine, check_model, CHECK_TEXT, layer=1)
    _, _, ids = look.text_ids(CHECK_TEXT, check_model.vocab, "the check's text")

    def judge(result):
        got = np.asarray(result, dtype=np.float64)
        if got.shape != expected.surprisal.shape:
            return f"shape {got.shape}, expected {expected.surprisal.shape}"
        worst = np.abs(got - expected.surprisal).max()
        return "" if worst < 1e-4 else f"differs by up to {worst:.3g} nats"

    return verdict("surprisal", lambda: my_surprisal(check_engine, ids), judge)


def check_saturation(my_saturation):
    # Made-up values: unit u holds u values of 0.05 and 2u of 0.95 among 12; the rest sit at
    # 0.1, 0.9 (neither end: the bounds are strict) and 0.5.
    made_up = np.full((12, 4), 0.5)
    for u in range(4):
        made_up[:u, u], made_up[u : 3 * u, u] = 0.05, 0.95
    made_up[11, :], made_up[10, 0] = 0.1, 0.9
    known = (np.arange(4) / 12, 2 * np.arange(4) / 12)

    def attempt():
        result = my_saturation(made_up)
        if result is None:
            return None
        answers = {"made-up": result}
        for layer in range(check_engine.num_layers):
            for g, gate in enumerate(look.GATES):
                values = np.concatenate([p.layers[layer][gate] for p in check_parts])
                result = my_saturation(values)
                if result is None:
                    return None
                answers[layer, g] = result
        return answers

    def judge(answers):
        below, above = answers.pop("made-up")
        for got, want, end in ((below, known[0], "below"), (above, known[1], "above")):
            if np.shape(got) != want.shape or np.abs(np.asarray(got) - want).max() > 1e-12:
                return f"on made-up values, {end}: {np.round(got, 3)}, expected {np.round(want, 3)}"
        for (layer, g), (below, above) in answers.items():
            for got, want, end in (
                (below, check_reading.low, "below"),
                (above, check_reading.high, "above"),
            ):
                if np.shape(got) != want[layer, g].shape:
                    return f"{end}: shape {np.shape(got)}, expected {want[layer, g].shape}"
                if np.abs(np.asarray(got) - want[layer, g]).max() > 1e-12:
                    return f"gate {look.GATES[g]} of layer {layer + 1}, {end}: wrong fractions"
        return ""

    return verdict("saturation", attempt, judge)


def check_correlation(my_correlation):
    feature = look.FeatureTracker()([check_model.vocab[i] for i in valid["small"][:CHECK_WORDS]])
    wanted = check_reading.correlation[:, look.FEATURES.index("sentence_position")]  # [L, H]

    # Made-up units against a made-up feature: r = 1, r = -1, and NaN for a constant unit.
    made_feature = np.array([1.0, 4.0, 2.0, 8.0, 5.0])
    made_values = np.stack([3 * made_feature + 1, -0.5 * made_feature, np.full(5, 0.5)], axis=1)
    made_r = np.array([1.0, -1.0, np.nan])

    def attempt():
        result = my_correlation(made_values, made_feature)
        if result is None:
            return None
        rows = [np.asarray(result, dtype=np.float64)]
        for layer in range(check_engine.num_layers):
            values = np.concatenate([p.layers[layer]["c"] for p in check_parts])
            result = my_correlation(values.astype(np.float64), feature[:, 0])
            if result is None:
                return None
            rows.append(np.asarray(result, dtype=np.float64))
        return rows

    def judge(rows):
        made, *rows = rows
        if made.shape != (3,) or not np.array_equal(np.isnan(made), np.isnan(made_r)):
            return f"on made-up units: {made}, expected {made_r}"
        if np.abs(made[:2] - made_r[:2]).max() > 1e-12:
            return f"on made-up units: {made}, expected {made_r}"
        for layer, got in enumerate(rows):
            if got.shape != wanted[layer].shape:
                return f"shape {got.shape}, expected {wanted[layer].shape}"
            worst = np.nanmax(np.abs(got - wanted[layer]))
            if worst > 1e-6 or not np.array_equal(np.isnan(got), np.isnan(wanted[layer])):
                return f"layer {layer + 1}: r differs by up to {worst:.3g}"
        return ""

    return verdict("correlation", attempt, judge)


def check_nearest(my_nearest):
    words = ("billion", "president", "stock")
    matrices = {
        "embedding": check_model.params["embedding"].astype(np.float64),
        "softmax": check_model.params["softmax_kernel"].T.astype(np.float64),
    }

    def attempt():
        found = {}
        for word in words:
            for kind, vectors in matrices.items():
                result = my_nearest(vectors, check_model.vocab.index(word), 8)
                if result is None:
                    return None
                found[word, kind] = [check_model.vocab[k] for k in result]
        return found

    def judge(found):
        for word in words:
            expected = look.neighbours(check_model, word, 8)
            for kind in matrices:
                want = [w for w, _ in expected[kind]]
                if found[word, kind] != want:
                    return f"{word}, {kind}: {found[word, kind]}, expected {want}"
        return ""

    return verdict("nearest", attempt, judge)


# %%
def my_surprisal(engine, ids):
    return None


check_surprisal(my_surprisal)


# %%
def my_saturation(values):
    return None


check_saturation(my_saturation)


# %%
def my_correlation(values, feature):
    return None


check_correlation(my_correlation)


# %%
def my_nearest(vectors, row, count):
    return None


check_nearest(my_nearest)

# %% [markdown]
# ## (i) Solutions to the exercises
#
# ---
#
# **Stop here until you have tried them: the answers follow.**
#
# 1. One forward pass over all the ids from a zero state, the log-softmax of the logits, and
#    at position $k$ the log-probability of `ids[k + 1]`, negated. The wrong answer takes the
#    log-probability of `ids[k]`, the word just read: the model's guess of the past.
# 2. Compare, strictly, and average over the time axis (axis 0), which leaves a fraction per
#    unit. The wrong answer counts the bounds themselves (`<=`, `>=`): the made-up values catch
#    it, where the gates of a trained model, which rarely sit on 0.1 exactly, might not.
# 3. Centre both, divide the covariance by the product of the standard deviations. The wrong
#    answer leaves the feature uncentred: the numerator is then $\sum_t (x_t - \bar x) y_t$, the
#    same, but the denominator uses $\sum_t y_t^2$ and r comes out too small. A constant unit
#    gives 0 / 0, NaN, as asked.
# 4. Normalise the rows, take the dot products with the row, set the row's own to $-\infty$,
#    and sort in decreasing order. The wrong answer ranks by the dot product without
#    normalising, which favours long vectors: frequent words.


# %%
def solution_surprisal(engine, ids):
    zero = [(np.zeros((1, engine.hidden_size), engine.np_dtype),) * 2] * engine.num_layers
    logits = engine.forward(np.asarray(ids)[None, :], zero).logits[:, 0]
    log_p = engine.log_softmax(logits.astype(np.float64))
    return -log_p[np.arange(len(ids) - 1), np.asarray(ids[1:])]


def wrong_surprisal(engine, ids):  # the word just read, not the next one
    zero = [(np.zeros((1, engine.hidden_size), engine.np_dtype),) * 2] * engine.num_layers
    logits = engine.forward(np.asarray(ids)[None, :], zero).logits[:, 0]
    log_p = engine.log_softmax(logits.astype(np.float64))
    return -log_p[np.arange(len(ids) - 1), np.asarray(ids[:-1])]


def solution_saturation(values):
    return (values < 0.1).mean(axis=0), (values > 0.9).mean(axis=0)


def wrong_saturation(values):  # 0.1 and 0.9 themselves counted
    return (values <= 0.1).mean(axis=0), (values >= 0.9).mean(axis=0)


def solution_correlation(values, feature):
    x = values - values.mean(axis=0)
    y = feature - feature.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (y @ x) / np.sqrt((y @ y) * (x * x).sum(axis=0))


def wrong_correlation(values, feature):  # the feature not centred
    x = values - values.mean(axis=0)
    y = feature
    with np.errstate(invalid="ignore", divide="ignore"):
        return (y @ x) / np.sqrt((y @ y) * (x * x).sum(axis=0))


def solution_nearest(vectors, row, count):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit[row]
    cosine[row] = -np.inf
    return np.argsort(-cosine, kind="stable")[:count]


def wrong_nearest(vectors, row, count):  # the dot product, not the cosine
    dot = vectors @ vectors[row]
    dot[row] = -np.inf
    return np.argsort(-dot, kind="stable")[:count]


print("--- the solutions")
check_surprisal(solution_surprisal)
check_saturation(solution_saturation)
check_correlation(solution_correlation)
check_nearest(solution_nearest)
print("--- the wrong answers")
check_surprisal(wrong_surprisal)
check_saturation(wrong_saturation)
check_correlation(wrong_correlation)
check_nearest(wrong_nearest)

# %% [markdown]
# Every number of this part is a function of the forward pass of Part I and of two weight
# matrices: surprisal is the loss of Part I (d) word by word, saturation and correlations are
# counts over the activations that back-propagation (Part I (e)) differentiates through, and
# neighbours are cosines between rows of the parameters it updates. What the pictures show of
# the trained models, and what dropout changed inside, is in
# [docs/inside.md](../docs/inside.md).
