"""Valid perplexity after every epoch of several runs, side by side (docs/results.md).

Reads each run folder's metrics.jsonl (a run folder under runs/ or a published one under
docs/results/) and prints a Markdown table, one row per epoch and one column per run.

    python benchmarks/valid_by_epoch.py LABEL=RUN_DIR [LABEL=RUN_DIR ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ptb_lstm.plot import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
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


if __name__ == "__main__":
    main()
