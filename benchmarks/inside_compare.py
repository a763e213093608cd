"""Two trained models side by side, inside: what regularisation changed, measured.

Reads the first --limit words of a split with each checkpoint (``ptb_lstm.look``: the reference
engine's forward pass, one stream from a zero state) and writes

- FIGURES/inside-saturation.png: per unit, the fraction of each gate's values below 0.1 and
  above 0.9 (Karpathy, Johnson and Fei-Fei 2015), one row of panels per model;
- FIGURES/inside-activations.png: per unit, the fraction of the words after which |h| < 0.1
  and the mean |c|, as histograms of the two models;
- JSON: per model and layer, those numbers summed up (means, units saturated most of the time),
  the nearest-neighbour overlap of the embedding and the softmax weights, and the second
  model's numbers minus the first's.

    python benchmarks/inside_compare.py SMALL.npz MEDIUM.npz
    python benchmarks/inside_compare.py A.npz B.npz --names "no dropout" dropout \\
        --data-dir DIR --limit 5000 --figures /tmp/figs --json /tmp/inside.json

The defaults write docs/figures/inside-*.png and docs/results/inside.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ptb_lstm import checkpoint, look
from ptb_lstm import look_figures as fig
from ptb_lstm.data import EOS, UNK, load_corpus, locate_data_dir
from ptb_lstm.errors import UserError

REPO = Path(__file__).resolve().parents[1]
#: Words whose neighbours are compared, those both vocabularies hold.
WORDS = ("company", "market", "stock", "president", "said", "billion", "bank", "year", "japan")


def neighbour_words(ckpts: list[checkpoint.Checkpoint], count: int = 10) -> list[str]:
    """WORDS that every vocabulary holds, else its first ``count`` shared ordinary words."""
    shared = set.intersection(*(set(c.vocab) for c in ckpts)) - {EOS, UNK}
    chosen = [w for w in WORDS if w in shared]
    return chosen or sorted(shared)[:count]


def neighbour_overlap(ckpts: list[checkpoint.Checkpoint], words: list[str], top: int) -> dict:
    """Mean number of words shared by the embedding's and the softmax's ``top`` neighbours in
    each model, and by the two models' embedding (softmax) neighbours."""
    found = [[look.neighbours(c, w, top) for w in words] for c in ckpts]

    def across(kind: str) -> float:
        pairs = zip(found[0], found[1], strict=True)
        return float(
            np.mean([len({w for w, _ in a[kind]} & {w for w, _ in b[kind]}) for a, b in pairs])
        )

    return {
        "words": words,
        "top": top,
        "embedding_vs_softmax": [float(np.mean([f["overlap"] for f in model])) for model in found],
        "embedding_across_models": across("embedding"),
        "softmax_across_models": across("softmax"),
    }


def difference(a, b):
    """b - a, leaf by leaf, for two nested dicts of numbers."""
    if isinstance(a, dict):
        return {key: difference(a[key], b[key]) for key in a}
    return b - a


def plot_saturation(readings, names, path: Path) -> Path:
    """The saturation picture of each model, a row of panels each."""
    plt = fig.pyplot()
    figure, axes = plt.subplots(
        len(readings), len(look.GATES), figsize=(12, 4.0 * len(readings)), squeeze=False
    )
    for row, (reading, name) in enumerate(zip(readings, names, strict=True)):
        fig.draw_saturation(reading, axes[row], name)
    figure.suptitle(
        f"gate saturation per unit, first {readings[0].tokens:,} words of {readings[0].split}",
        fontsize=10,
    )
    figure.tight_layout()
    return fig.save_figure(figure, path)


def plot_activations(readings, names, path: Path) -> Path:
    plt = fig.pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for reading, name in zip(readings, names, strict=True):
        left.hist(reading.silent.ravel(), bins=30, range=(0, 1), alpha=0.5, label=name)
        right.hist(reading.mean_abs_cell.ravel(), bins=30, alpha=0.5, label=name)
    left.set(xlabel=f"fraction of words after which |h| < {look.SILENT:g}", ylabel="units")
    right.set(xlabel="mean |c| over the words", ylabel="units")
    for ax in (left, right):
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    figure.suptitle(
        "per unit, every layer: how often it is silent, how large its cell", fontsize=10
    )
    figure.tight_layout()
    return fig.save_figure(figure, path)


def compare(args) -> dict:
    ckpts = [checkpoint.load(path) for path in args.checkpoints]
    data_dir = locate_data_dir(args.data_dir)
    readings = []
    for ckpt in ckpts:
        ids = load_corpus(data_dir, vocab=ckpt.vocab).split(args.split)
        engine = look.reference_engine(ckpt)
        readings.append(look.read_corpus(engine, ckpt.vocab, ids, args.split, args.limit))
    summaries = [look.corpus_summary(r) for r in readings]
    record = {
        "split": args.split,
        "tokens": readings[0].tokens,
        "models": {
            name: {"checkpoint": Path(path).name, "config": c.config.to_dict(), **s}
            for name, path, c, s in zip(args.names, args.checkpoints, ckpts, summaries, strict=True)
        },
        "difference": {f"{args.names[1]} - {args.names[0]}": difference(*summaries)},
        "neighbours": neighbour_overlap(ckpts, neighbour_words(ckpts), args.top),
    }
    figures = Path(args.figures)
    figures.mkdir(parents=True, exist_ok=True)
    plot_saturation(readings, args.names, figures / "inside-saturation.png")
    plot_activations(readings, args.names, figures / "inside-activations.png")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    fig.write_json(Path(args.json), record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoints", nargs=2, metavar="CKPT", help="two model.npz files")
    parser.add_argument("--names", nargs=2, default=["small", "medium"], metavar="NAME")
    parser.add_argument("--data-dir", help="PTB's folder (default: as ptb-lstm finds it)")
    parser.add_argument("--split", default="valid", choices=("train", "valid", "test"))
    parser.add_argument("--limit", type=int, default=20000, help="words read (default: 20000)")
    parser.add_argument("--top", type=int, default=10, help="neighbours compared (default: 10)")
    parser.add_argument("--figures", default=str(REPO / "docs" / "figures"))
    parser.add_argument("--json", default=str(REPO / "docs" / "results" / "inside.json"))
    args = parser.parse_args(argv)
    if args.limit <= 0 or args.top <= 0:
        parser.error("--limit and --top must be > 0")
    try:
        record = compare(args)
    except UserError as error:
        print(f"inside_compare.py: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.figures}/inside-*.png and {args.json}")
    print_table(record, args.names)
    return 0


def flatten(tree: dict, prefix: str = "") -> dict[str, float]:
    """A nested dict of numbers as {"layer_1 gates i mean_below_low": value, ...}."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        name = f"{prefix} {key}".strip()
        out.update(flatten(value, name) if isinstance(value, dict) else {name: value})
    return out


def print_table(record: dict, names: list[str]) -> None:
    """The JSON's numbers of each model, a row each, with their difference."""
    a, b = (record["models"][name] for name in names)
    rows_a = flatten({k: v for k, v in a.items() if k.startswith("layer_")})
    rows_b = flatten({k: v for k, v in b.items() if k.startswith("layer_")})
    shared = record["neighbours"]["embedding_vs_softmax"]
    rows_a["neighbours shared, embedding vs softmax"] = shared[0]
    rows_b["neighbours shared, embedding vs softmax"] = shared[1]
    print(f"first {record['tokens']:,} words of {record['split']}")
    print(f"{'':42} {names[0]:>10} {names[1]:>10} {'difference':>10}")
    for label, value in rows_a.items():
        print(f"{label:42} {value:10.4f} {rows_b[label]:10.4f} {rows_b[label] - value:+10.4f}")


if __name__ == "__main__":
    sys.exit(main())
