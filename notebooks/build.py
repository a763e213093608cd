"""Build the notebooks of the course from their sources and execute them.

    python notebooks/build.py            # build and execute all five (outputs kept), and
                                         # export their figures to docs/figures/
    python notebooks/build.py --no-run   # only build them

Each notebook's source is a Python file in jupytext's percent format beside it
(1_numpy.py -> 1_numpy.ipynb): `# %%` starts a code cell, `# %% [markdown]` a Markdown cell
whose lines are commented with `# `, and `# %% figure="NAME"` a code cell whose image is
exported to docs/figures/NAME.png. The notebooks import the toolkit's own code; nothing of the
model is copied into them. Each reads PTB from $PTB_DATA_DIR (or the user cache) and shortens
its training runs when PTB_LSTM_NOTEBOOK_STEPS is set (the test suite sets it). Part V reads
two trained checkpoints, named by PTB_LSTM_SMALL_CKPT and PTB_LSTM_MEDIUM_CKPT; without them
it is left as it is (the test suite runs it on short stand-in runs).
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
FIGURES = HERE.parent / "docs" / "figures"

NOTEBOOKS = [
    "1_numpy.ipynb",
    "2_tf_eager.ipynb",
    "3_tf_graph.ipynb",
    "4_torch.ipynb",
    "5_inside.ipynb",
]
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def source_of(name: str) -> Path:
    """The percent-format source of notebook ``name``."""
    return HERE / Path(name).with_suffix(".py").name


def cells(name: str) -> list:
    """The cells of notebook ``name``, read from its source."""
    return read_cells(source_of(name))


def read_cells(path: Path) -> list:
    """The cells of a percent-format file: code and Markdown, each code cell's figure name."""
    built = []
    for cell in jupytext.read(path, fmt="py:percent").cells:
        if cell.cell_type == "markdown":
            built.append(nbformat.v4.new_markdown_cell(cell.source))
            continue
        built.append(nbformat.v4.new_code_cell(cell.source))
        # Of the cell's metadata only the figure name goes into the notebook: jupytext's
        # layout hints (lines_to_next_cell) describe the .py file.
        if "figure" in cell.metadata:
            built[-1].metadata["figure"] = cell.metadata["figure"]
    return built


def write(name: str, folder: Path = HERE) -> Path:
    """Build notebook ``name`` from its source into folder/NAME, without outputs."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells(name)
    notebook.metadata["kernelspec"] = KERNELSPEC
    path = folder / name
    nbformat.write(notebook, path)
    return path


def execute(path: Path, timeout: int = 900) -> float:
    """Run every cell in order, keeping the outputs; returns the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    nbformat.write(notebook, path)
    return time.perf_counter() - started


def export_figures(path: Path, folder: Path = FIGURES) -> list[Path]:
    """Write the first image of every cell whose metadata names a figure to folder/NAME.png."""
    notebook = nbformat.read(path, as_version=4)
    written = []
    for cell in notebook.cells:
        name = cell.get("metadata", {}).get("figure")
        images = [
            o["data"]["image/png"]
            for o in cell.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]
        if name and images:
            target = folder / f"{name}.png"
            target.write_bytes(base64.b64decode(images[0]))
            written.append(target)
    return written


#: Notebooks that read trained checkpoints, and the variables that name them: built with their
#: outputs only when every one is set, so that stand-in pictures never replace the trained ones.
CHECKPOINTS = {"5_inside.ipynb": ("PTB_LSTM_SMALL_CKPT", "PTB_LSTM_MEDIUM_CKPT")}


def missing_checkpoints(name: str) -> list[str]:
    """The variables notebook ``name`` needs to be built from trained models that are unset."""
    return [var for var in CHECKPOINTS.get(name, ()) if not os.environ.get(var)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="build without executing")
    parser.add_argument(
        "--only",
        choices=NOTEBOOKS,
        action="append",
        help="build (and run) only this notebook (repeatable)",
    )
    args = parser.parse_args()
    for name in args.only or NOTEBOOKS:
        missing = missing_checkpoints(name)
        if missing and not args.no_run:
            message = (
                f"{name}: not built; set {' and '.join(missing)} to the model.npz of trained "
                "runs (docs/inside.md), or use --no-run"
            )
            if args.only:
                print(f"build.py: {message}", file=sys.stderr)
                return 2
            print(message, flush=True)
            continue
        path = write(name)
        if not args.no_run:
            print(f"{name}: executed in {execute(path):.0f} s", flush=True)
            for figure in export_figures(path):
                print(f"  wrote {figure.relative_to(HERE.parent)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
