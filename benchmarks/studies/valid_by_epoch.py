"""Valid perplexity after every epoch of several runs, side by side (docs/results.md).

Reads each run folder's metrics.jsonl (a run folder under runs/ or a published one under
docs/results/) and prints a Markdown table, one row per epoch and one column per run; with
--plot, also draws the same curves, each labelled as given, with its last epoch's value.

    python benchmarks/studies/valid_by_epoch.py LABEL=RUN_DIR [LABEL=RUN_DIR ...] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ptb_lstm.plot import load_run


def plot(columns: dict[str, list[float]], out: Path) -> None:
    """Valid perplexity against epoch, one line per run, legend with the last epoch's value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    fig, ax = plt.subplots(figsize=(8, 4.6))
    for label, values in columns.items():
        epochs = list(range(1, len(values) + 1))
        ax.plot(
            epochs,
            values,
            marker="o",
            ms=3,
            lw=1.2,
            label=f"{label}: {values[-1]:.2f} after epoch {len(values)}",
        )
    ax.set(
        xlabel="epoch",
        ylabel="valid perplexity",
        yscale="log",
        title="valid perplexity after each epoch",
    )
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        type=Path,
        help="also draw the curves into this figure (needs matplotlib)",
    )
    args = parser.parse_args()
    columns = {}
    for item in args.runs:
        label, _, folder = item.partition("=")
        if not folder:
            parser.error(f"{item}: expected LABEL=RUN_DIR")
        columns[label] = [e["valid_perplexity"] for e in load_run(Path(folder)).epochs]
    print("| epoch | " + " | ".join(columns) + " |")
    print("|---:|" + "---:|" * len(columns))
    for epoch in range(max(len(v) for v in columns.values())):
        cells = [f"{v[epoch]:.2f}" if epoch < len(v) else "" for v in columns.values()]
        print(f"| {epoch + 1} | " + " | ".join(cells) + " |")
    if args.plot:
        plot(columns, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
