"""Inside a trained model: what each word of a text costs it, what its cells hold while it
reads, how often its gates saturate, which cells follow simple features of the text, and which
words its embedding and its softmax weights hold close (after Karpathy, Johnson & Fei-Fei 2015,
"Visualizing and understanding recurrent networks").

Every activation is the reference engine's own forward pass (``engines/numpy_reference.py``),
reading one stream (batch 1) from a zero state, in chunks that carry the state on: a text or a
split of any length is read in bounded memory, and the numbers do not depend on the chunk size.
Plain NumPy; the figures are ``ptb_lstm.look_figures``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ptb_lstm.checkpoint import Checkpoint
from ptb_lstm.data import EOS
from ptb_lstm.engines.numpy_reference import ReferenceEngine
from ptb_lstm.errors import UserError
from ptb_lstm.evaluate import perplexity
from ptb_lstm.text import NO_EOS, normalize, to_ids

#: Words read per call of the forward pass; any size gives the same numbers.
CHUNK = 128
#: The gates proper (sigmoids); g, the tanh candidate, is no gate and has no "near 0 or 1".
GATES = ("i", "f", "o")
#: A gate value below LOW is "near 0" (left-saturated), above HIGH "near 1" (Karpathy et al.).
LOW, HIGH = 0.1, 0.9
#: |h| below this counts as silent, for the sparsity of a layer's output.
SILENT = 0.1
#: The features the cells are correlated with; the marks that open and close a span.
FEATURES = ("sentence_position", "after_number", "in_quotes", "in_parentheses")
QUOTE_OPEN, QUOTE_CLOSE, QUOTE_BOTH = ("``",), ("''",), ('"',)
PAREN_OPEN, PAREN_CLOSE = ("(", "-lrb-"), (")", "-rrb-")


@dataclass
class Chunk:
    """The activations of one chunk of a stream, every layer, batch dimension dropped."""

    inputs: np.ndarray  # [T] the word ids read
    layers: list[dict[str, np.ndarray]]  # per layer: h, c, i, f, g, o, each [T, H], after step t
    log_probs: np.ndarray | None  # [T, V] float64 log p(next word), None when not asked for


def reference_engine(ckpt: Checkpoint, dtype: str | None = None) -> ReferenceEngine:
    """The reference engine holding the checkpoint's weights, in ``dtype`` (default: its own)."""
    return ReferenceEngine(ckpt.config, ckpt.params, dtype=dtype or ckpt.dtype)


def read_stream(
    engine: ReferenceEngine, ids: np.ndarray, chunk: int = CHUNK, with_logits: bool = True
) -> Iterator[Chunk]:
    """The activations of reading ``ids`` [N] as one stream from a zero state, ``chunk`` words
    per forward pass, the state carried from one pass to the next."""
    state = [(np.zeros((1, engine.hidden_size), engine.np_dtype),) * 2] * engine.num_layers
    for start in range(0, len(ids), chunk):
        inputs = np.asarray(ids[start : start + chunk], dtype=np.int64)
        fwd = engine.forward(inputs[None, :], state, with_logits=with_logits)
        state = fwd.final_state
        layers = [
            {
                "h": layer.h[1:, 0],
                "c": layer.c[1:, 0],
                **{gate: getattr(layer, gate)[:, 0] for gate in "ifgo"},
            }
            for layer in fwd.layers
        ]
        log_probs = None
        if fwd.logits is not None:
            log_probs = engine.log_softmax(fwd.logits[:, 0].astype(np.float64))
        yield Chunk(inputs, layers, log_probs)


# -- a text ----------------------------------------------------------------------------------


@dataclass
class TextReading:
    """What the model did with a text: each word's surprisal, and one layer's activations over
    the first ``kept`` words."""

    words: list[str]  # the text's tokens (<eos> closing each sentence), as written
    read_as: list[str]  # the same, as the model read them (<unk> for words it lacks)
    surprisal: np.ndarray  # [N] -log p(word | the words before it), natural log, float64
    layer: int  # 1-based
    cells: np.ndarray  # [kept, H] c of that layer after reading each of the first words
    hidden: np.ndarray  # [kept, H] h, the same way

    @property
    def log_likelihood(self) -> float:
        return -float(self.surprisal.sum())

    @property
    def perplexity(self) -> float:
        return perplexity(float(self.surprisal.sum()), len(self.words))

    def to_dict(self) -> dict:
        """The numbers of ``surprisal.json``."""
        bits = self.surprisal / np.log(2)
        return {
            "tokens": len(self.words),
            "unknown": sum(w != r for w, r in zip(self.words, self.read_as, strict=True)),
            "log_likelihood": self.log_likelihood,
            "perplexity": self.perplexity,
            "words": [
                {"word": w, "read_as": r, "surprisal_nats": float(s), "surprisal_bits": float(b)}
                for w, r, s, b in zip(self.words, self.read_as, self.surprisal, bits, strict=True)
            ],
        }


def check_layer(layer: int, num_layers: int) -> None:
    """Refuse, naming --layer, a layer the model does not have (layers count from 1)."""
    if not 1 <= layer <= num_layers:
        raise UserError(
            f"--layer {layer}: the model has {num_layers} layer(s); choose 1 (the bottom, "
            f"reading the embedding) to {num_layers} (the top, feeding the softmax)"
        )


def text_ids(text: str, vocab: list[str], source: str) -> tuple[list[str], list[str], list[int]]:
    """The text's tokens as written and as read, and their ids, read after a sentence end
    (the ids start with <eos>); an empty text is a UserError naming ``source``."""
    word_to_id = {w: i for i, w in enumerate(vocab)}
    if EOS not in word_to_id:
        raise UserError(NO_EOS)
    sentences = normalize(text, set(vocab))
    if not sentences:
        raise UserError(f"{source} holds no words to read; give a text with at least one word")
    ids, read_as, _ = to_ids(sentences, word_to_id)
    words = [token for sentence in sentences for token in [*sentence, EOS]]
    return words, read_as, [word_to_id[EOS], *ids]


def read_text(
    engine: ReferenceEngine,
    ckpt: Checkpoint,
    text: str,
    layer: int,
    keep: int = 80,
    source: str = "the text",
    chunk: int = CHUNK,
) -> TextReading:
    """Read ``text`` (normalised the PTB way, after a sentence end): the surprisal of every
    word, and ``layer``'s c and h after each of its first ``keep`` words."""
    check_layer(layer, ckpt.config.num_layers)
    words, read_as, ids = text_ids(text, ckpt.vocab, source)
    targets = np.asarray(ids[1:])
    surprisal, cells, hidden = [], [], []
    stream = read_stream(engine, np.asarray(ids), chunk)
    for start, part in zip(range(0, len(ids), chunk), stream, strict=True):
        # Input k predicts word k + 1; its state is the state after word k (k = 0 is <eos>).
        wanted = targets[start : start + len(part.inputs)]
        assert part.log_probs is not None  # read_stream gives them by default
        surprisal.append(-part.log_probs[np.arange(len(wanted)), wanted])
        first = max(1, start) - start  # the leading <eos> is no word of the text
        last = min(keep + 1, start + len(part.inputs)) - start
        if last > first:
            cells.append(part.layers[layer - 1]["c"][first:last].astype(np.float64))
            hidden.append(part.layers[layer - 1]["h"][first:last].astype(np.float64))
    H = ckpt.config.hidden_size
    return TextReading(
        words,
        read_as,
        np.concatenate(surprisal),
        layer,
        np.concatenate(cells) if cells else np.zeros((0, H)),
        np.concatenate(hidden) if hidden else np.zeros((0, H)),
    )


# -- a corpus split ----------------------------------------------------------------------------


def span_marks(vocab: list[str]) -> dict[str, list[str]]:
    """The marks of quotations and parentheses the vocabulary holds, by feature (PTB's
    language-modelling text holds none of them)."""
    held = set(vocab)
    return {
        "in_quotes": [m for m in (*QUOTE_OPEN, *QUOTE_CLOSE, *QUOTE_BOTH) if m in held],
        "in_parentheses": [m for m in (*PAREN_OPEN, *PAREN_CLOSE) if m in held],
    }


class FeatureTracker:
    """The features of each word read, one chunk at a time, carrying what spans are open."""

    def __init__(self) -> None:
        self.position = 0  # words read since the last <eos>
        self.in_quotes = False
        self.depth = 0  # open parentheses

    def __call__(self, tokens: list[str]) -> np.ndarray:
        """[T, len(FEATURES)] float64: each word's position in its sentence (1 for its first
        word, <eos> counted last), whether it is N, and whether it lies inside a quotation or
        parentheses (the opening mark inside, the closing one not; a sentence end closes
        all)."""
        out = np.zeros((len(tokens), len(FEATURES)))
        for t, token in enumerate(tokens):
            self.position += 1
            if token in QUOTE_OPEN or (token in QUOTE_BOTH and not self.in_quotes):
                self.in_quotes = True
            elif token in QUOTE_CLOSE or token in QUOTE_BOTH:
                self.in_quotes = False
            if token in PAREN_OPEN:
                self.depth += 1
            elif token in PAREN_CLOSE:
                self.depth = max(0, self.depth - 1)
            out[t] = (self.position, token == "N", self.in_quotes, self.depth > 0)
            if token == EOS:
                self.position, self.in_quotes, self.depth = 0, False, 0
        return out


@dataclass
class Moments:
    """Running sums for the Pearson correlation of F features with H units: r = cov / sd sd."""

    count: int = 0
    x: np.ndarray | None = None  # [H] sum of the unit's values
    xx: np.ndarray | None = None  # [H] sum of squares
    y: np.ndarray | None = None  # [F]
    yy: np.ndarray | None = None  # [F]
    xy: np.ndarray | None = None  # [F, H]

    def add(self, values: np.ndarray, features: np.ndarray) -> None:
        """values [T, H], features [T, F]."""
        values = values.astype(np.float64)
        parts = (values.sum(0), (values**2).sum(0), features.sum(0), (features**2).sum(0))
        product = features.T @ values
        if self.x is None:
            self.x, self.xx, self.y, self.yy, self.xy = (*parts, product)
        else:
            self.x, self.xx, self.y, self.yy = (
                self.x + parts[0],
                self.xx + parts[1],
                self.y + parts[2],
                self.yy + parts[3],
            )
            self.xy = self.xy + product
        self.count += len(values)

    def correlation(self) -> np.ndarray:
        """[F, H] Pearson r; NaN where a feature or a unit does not vary."""
        n = self.count
        if self.x is None or self.xx is None or self.y is None or self.yy is None:
            raise ValueError("no values were added")
        assert self.xy is not None
        cov = n * self.xy - np.outer(self.y, self.x)
        var_x, var_y = n * self.xx - self.x**2, n * self.yy - self.y**2
        with np.errstate(invalid="ignore", divide="ignore"):
            r = cov / np.sqrt(np.outer(var_y, var_x))
        flat = np.outer(var_y <= 1e-12 * n * n, np.ones_like(self.x, dtype=bool))
        r[flat | (var_x <= 1e-12 * n * n)[None, :]] = np.nan
        return np.clip(r, -1.0, 1.0)


@dataclass
class CorpusReading:
    """Counts over the first ``tokens`` words of a split, every layer and unit."""

    split: str
    tokens: int
    low: np.ndarray  # [L, 3, H] fraction of the values of gates i, f, o below LOW
    high: np.ndarray  # [L, 3, H] fraction above HIGH
    silent: np.ndarray  # [L, H] fraction of |h| below SILENT
    mean_abs_cell: np.ndarray  # [L, H] mean |c|
    correlation: np.ndarray  # [L, F, H] Pearson r of each cell's c with each feature
    marks: dict[str, list[str]] = field(default_factory=dict)


def read_corpus(
    engine: ReferenceEngine,
    vocab: list[str],
    ids: np.ndarray,
    split: str,
    limit: int,
    chunk: int = CHUNK,
) -> CorpusReading:
    """Gate saturation, sparsity and feature correlations over the first ``limit`` words of a
    split's ids, read as one stream from a zero state, in bounded memory."""
    ids = np.asarray(ids[:limit])
    L, H = engine.num_layers, engine.hidden_size
    low, high = np.zeros((L, len(GATES), H), np.int64), np.zeros((L, len(GATES), H), np.int64)
    silent, abs_cell = np.zeros((L, H), np.int64), np.zeros((L, H))
    moments = [Moments() for _ in range(L)]
    features = FeatureTracker()
    for part in read_stream(engine, ids, chunk, with_logits=False):
        row = features([vocab[i] for i in part.inputs])
        for layer, values in enumerate(part.layers):
            gates = np.stack([values[g] for g in GATES])  # [3, T, H]
            low[layer] += (gates < LOW).sum(axis=1)
            high[layer] += (gates > HIGH).sum(axis=1)
            silent[layer] += (np.abs(values["h"]) < SILENT).sum(axis=0)
            abs_cell[layer] += np.abs(values["c"]).sum(axis=0, dtype=np.float64)
            moments[layer].add(values["c"], row)
    n = max(len(ids), 1)
    return CorpusReading(
        split,
        len(ids),
        low / n,
        high / n,
        silent / n,
        abs_cell / n,
        np.stack([m.correlation() for m in moments]),
        span_marks(vocab),
    )


def top_cells(reading: CorpusReading, count: int = 5) -> dict[str, dict]:
    """Per feature, the ``count`` cells (layer from 1, unit from 0) of largest |r|, or why
    there are none (the vocabulary lacks the feature's marks, or it never varied)."""
    out: dict[str, dict] = {}
    for f, name in enumerate(FEATURES):
        if name in reading.marks and not reading.marks[name]:
            out[name] = {"cells": [], "why_none": "the vocabulary holds none of its marks"}
            continue
        r = reading.correlation[:, f, :]  # [L, H]
        if np.all(np.isnan(r)):
            out[name] = {"cells": [], "why_none": "the feature is constant over the words read"}
            continue
        order = np.argsort(-np.nan_to_num(np.abs(r), nan=-1.0), axis=None)[:count]
        cells = [np.unravel_index(k, r.shape) for k in order]
        out[name] = {
            "cells": [
                {"layer": int(layer) + 1, "unit": int(unit), "r": float(r[layer, unit])}
                for layer, unit in cells
            ]
        }
    return out


def corpus_dict(reading: CorpusReading, count: int = 5) -> dict:
    """The numbers of ``saturation.json`` and ``cells.json`` together."""
    return {
        "split": reading.split,
        "tokens": reading.tokens,
        "thresholds": {"low": LOW, "high": HIGH, "silent": SILENT},
        "saturation": {
            f"layer_{layer + 1}": {
                gate: {
                    "below_low": reading.low[layer, g].tolist(),
                    "above_high": reading.high[layer, g].tolist(),
                }
                for g, gate in enumerate(GATES)
            }
            for layer in range(reading.low.shape[0])
        },
        "silent_fraction": reading.silent.tolist(),
        "mean_abs_cell": reading.mean_abs_cell.tolist(),
        "marks": reading.marks,
        "top_cells": top_cells(reading, count),
    }


def corpus_summary(reading: CorpusReading) -> dict:
    """Per layer: each gate's mean fraction below LOW and above HIGH, the share of units that
    are below (above) for more than half the words, the mean silent fraction and mean |c|."""
    out = {}
    for layer in range(reading.low.shape[0]):
        gates = {
            gate: {
                "mean_below_low": float(reading.low[layer, g].mean()),
                "mean_above_high": float(reading.high[layer, g].mean()),
                "units_mostly_low": float((reading.low[layer, g] > 0.5).mean()),
                "units_mostly_high": float((reading.high[layer, g] > 0.5).mean()),
            }
            for g, gate in enumerate(GATES)
        }
        out[f"layer_{layer + 1}"] = {
            "gates": gates,
            "mean_silent_fraction": float(reading.silent[layer].mean()),
            "mean_abs_cell": float(reading.mean_abs_cell[layer].mean()),
        }
    return out


# -- neighbours --------------------------------------------------------------------------------


def neighbours(ckpt: Checkpoint, word: str, count: int = 10) -> dict:
    """The ``count`` words nearest ``word`` by cosine in the embedding (rows of E [V, H]) and in
    the softmax weights (columns of W_s [H, V]), and the words both lists share."""
    index = {w: i for i, w in enumerate(ckpt.vocab)}
    found = word if word in index else word.lower()
    if found not in index:
        raise UserError(
            f"--neighbours {word}: not in the model's vocabulary of {len(index):,} words; "
            "choose a word it holds (ptb-lstm inspect lists its size)"
        )
    out: dict = {"word": found}
    for name, matrix in (
        ("embedding", ckpt.params["embedding"]),
        ("softmax", ckpt.params["softmax_kernel"].T),
    ):
        out[name] = nearest(matrix.astype(np.float64), index[found], ckpt.vocab, count)
    shared = {w for w, _ in out["embedding"]} & {w for w, _ in out["softmax"]}
    out["shared"] = sorted(shared)
    out["overlap"] = len(shared)
    return out


def nearest(vectors: np.ndarray, row: int, vocab: list[str], count: int) -> list[tuple]:
    """The ``count`` rows of ``vectors`` [V, D] of highest cosine with row ``row``, itself
    left out, best first, as (word, cosine)."""
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    cosine = vectors @ vectors[row] / (norms * norms[row])
    cosine[row] = -np.inf
    order = np.argsort(-cosine, kind="stable")[:count]
    return [(vocab[k], float(cosine[k])) for k in order]
