"""The pictures and files of ``ptb-lstm look`` (``ptb_lstm.look`` computes what they show).
Every file is written whole or not at all (``ptb_lstm.atomic``)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ptb_lstm.atomic import write_atomic, write_text_atomic
from ptb_lstm.look import GATES, HIGH, LOW, CorpusReading, TextReading

#: Surprisal (bits) at which the colour of a word is darkest: above log2 of PTB's 10,000
#: words, what a model that knew nothing would pay for every word.
BITS_SCALE = 16.0


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG, atomically, and close it."""
    plt = pyplot()
    try:
        return write_atomic(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    finally:
        plt.close(fig)


def write_json(path: Path, record: dict) -> Path:
    """``record`` as indented JSON, atomically."""
    return write_text_atomic(path, json.dumps(record, indent=1) + "\n")


def surprisal_colour(bits: float) -> str:
    """The background of a word that costs ``bits``: white at 0, dark red at BITS_SCALE."""
    from matplotlib import colormaps

    red, green, blue, _ = colormaps["Reds"](min(bits, BITS_SCALE) / BITS_SCALE * 0.85)
    return f"#{int(red * 255):02x}{int(green * 255):02x}{int(blue * 255):02x}"


def surprisal_html(reading: TextReading, title: str) -> str:
    """The text with each word coloured by its surprisal; hovering shows the number."""
    bits = reading.surprisal / np.log(2)
    spans = []
    for word, read_as, cost in zip(reading.words, reading.read_as, bits, strict=True):
        note = f"{cost:.2f} bits" + (f", read as {read_as}" if read_as != word else "")
        ink = "color:#fff;" if cost > 0.6 * BITS_SCALE else ""
        spans.append(
            f'<span title="{html.escape(note)}" style="background:{surprisal_colour(cost)};'
            f'{ink}">{html.escape(word)}</span>'
        )
        if word == "<eos>":
            spans.append("<br>")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>\n<style>body{{font-family:sans-serif;"
        "line-height:2;max-width:60em}span{padding:2px 3px;margin:1px;border-radius:3px}"
        "</style></head><body>\n"
        f"<p>{html.escape(title)}: each word's surprisal, -log2 p(word | the words before it); "
        f"white is 0 bits, the darkest red {BITS_SCALE:g} bits or more. "
        f"Perplexity {reading.perplexity:.2f} over {len(reading.words)} tokens.</p>\n<p>"
        + " ".join(spans)
        + "</p>\n</body></html>\n"
    )


def plot_surprisal(reading: TextReading, path: Path, words: int) -> Path:
    """``draw_surprisal`` into the PNG ``path``."""
    return save_figure(draw_surprisal(reading, words), path)


def draw_surprisal(reading: TextReading, words: int):
    """A bar per word (the first ``words``), its height the surprisal in bits; the figure."""
    plt = pyplot()
    shown = min(words, len(reading.words))
    bits = reading.surprisal[:shown] / np.log(2)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * shown + 1.5), 3.6))
    ax.bar(range(shown), bits, color=[surprisal_colour(b) for b in bits], edgecolor="#888")
    ax.set_xticks(range(shown), reading.words[:shown], rotation=90, fontsize=8)
    ax.set(ylabel="surprisal (bits)", xlim=(-0.6, shown - 0.4))
    ax.set_title(
        f"-log2 p(word | the words before it); perplexity of the whole text "
        f"{reading.perplexity:.2f}",
        fontsize=10,
    )
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def chosen_units(cells: np.ndarray, units: int) -> np.ndarray:
    """The ``units`` columns of ``cells`` [T, H] that vary most over the words, in order."""
    spread = cells.var(axis=0) if len(cells) else np.zeros(cells.shape[1])
    return np.sort(np.argsort(-spread, kind="stable")[:units])


def plot_activations(reading: TextReading, path: Path, units: int) -> Path:
    """``draw_activations`` into the PNG ``path``."""
    return save_figure(draw_activations(reading, units), path)


def draw_activations(reading: TextReading, units: int):
    """c (top) and h (bottom) of the reading's layer: a row per unit (the ``units`` whose c
    varies most), a column per word; the figure."""
    plt = pyplot()
    rows = chosen_units(reading.cells, units)
    words = reading.words[: len(reading.cells)]
    fig, axes = plt.subplots(
        2, 1, figsize=(max(6.0, 0.28 * len(words) + 2.5), 0.16 * len(rows) * 2 + 2.8)
    )
    for ax, values, name in ((axes[0], reading.cells, "c"), (axes[1], reading.hidden, "h")):
        data = values[:, rows].T  # [units, words]
        limit = max(float(np.percentile(np.abs(data), 99)) if data.size else 1.0, 1e-6)
        image = ax.imshow(data, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_yticks(range(len(rows)), [str(u) for u in rows], fontsize=6)
        ax.set_xticks(range(len(words)), words, rotation=90, fontsize=7)
        ax.set_ylabel(f"unit ({name})")
        ax.set_title(
            f"layer {reading.layer}: {name} after each word ({len(rows)} units whose c varies "
            "most)",
            fontsize=9,
        )
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    fig.tight_layout()
    return fig


def plot_saturation(reading: CorpusReading, path: Path) -> Path:
    """``draw_saturation`` into the PNG ``path``."""
    return save_figure(draw_saturation(reading), path)


def draw_saturation(reading: CorpusReading, axes=None, name: str = ""):
    """Karpathy et al.'s picture: for each gate, a dot per unit at (fraction of its values
    below LOW, fraction above HIGH), one colour per layer; into ``axes`` (one per gate) or a
    new figure, which it returns."""
    plt = pyplot()
    fig = None
    if axes is None:
        fig, axes = plt.subplots(1, len(GATES), figsize=(4.0 * len(GATES), 4.0), sharey=True)
    names = {"i": "input gate", "f": "forget gate", "o": "output gate"}
    for g, (ax, gate) in enumerate(zip(axes, GATES, strict=True)):
        for layer in range(reading.low.shape[0]):
            ax.scatter(
                reading.low[layer, g],
                reading.high[layer, g],
                s=8,
                alpha=0.6,
                label=f"layer {layer + 1}",
            )
        ax.plot([0, 1], [1, 0], color="#999", lw=0.8)  # x + y = 1: always saturated
        title = f"{name}: {names[gate]} ({gate})" if name else f"{names[gate]} ({gate})"
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), title=title)
        ax.set_xlabel(f"fraction of values < {LOW:g} (left-saturated)")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"fraction of values > {HIGH:g} (right-saturated)")
    axes[0].legend(fontsize=8)
    if fig is not None:
        fig.suptitle(
            f"gate saturation per unit over the first {reading.tokens:,} words of the "
            f"{reading.split} split",
            fontsize=10,
        )
        fig.tight_layout()
    return fig
