"""Write the three notebooks of the illustrative series and execute them in place.

    python notebooks/build.py            # write and execute all three (outputs kept), and
                                         # export their figures to docs/figures/
    python notebooks/build.py --no-run   # only write them

The notebooks import the toolkit's own code; nothing of the model is copied into them. Each
reads PTB from $PTB_DATA_DIR (or the user cache) and shortens its training runs when
PTB_LSTM_NOTEBOOK_STEPS is set (the test suite sets it).
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from part_one import part_one
from parts_two_three import part_three, part_two

HERE = Path(__file__).resolve().parent
FIGURES = HERE.parent / "docs" / "figures"

NOTEBOOKS = {
    "1_numpy.ipynb": part_one,
    "2_tf_eager.ipynb": part_two,
    "3_tf_graph.ipynb": part_three,
}


def write(name: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = NOTEBOOKS[name]()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    path = HERE / name
    nbformat.write(notebook, path)
    return path


def execute(path: Path, timeout: int = 900) -> float:
    """Run every cell in order, keeping the outputs; returns the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path)
    return time.perf_counter() - started


def export_figures(path: Path, folder: Path = FIGURES) -> list[Path]:
    """Write the first image of every cell whose metadata names a figure to folder/NAME.png."""
    notebook = nbformat.read(path, as_version=4)
    written = []
    for cell in notebook.cells:
        name = cell.get("metadata", {}).get("figure")
        images = [o["data"]["image/png"] for o in cell.get("outputs", [])
                  if "image/png" in o.get("data", {})]
        if name and images:
            target = folder / f"{name}.png"
            target.write_bytes(base64.b64decode(images[0]))
            written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="write without executing")
    parser.add_argument("--only", choices=NOTEBOOKS, action="append",
                        help="write (and run) only this notebook (repeatable)")
    args = parser.parse_args()
    for name in args.only or NOTEBOOKS:
        path = write(name)
        if not args.no_run:
            print(f"{name}: executed in {execute(path):.0f} s", flush=True)
            for figure in export_figures(path):
                print(f"  wrote {figure.relative_to(HERE.parent)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
