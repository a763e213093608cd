"""The three notebooks of the series run top to bottom, so they never rot."""

import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO

sys.path.insert(0, str(REPO / "notebooks"))
import build  # noqa: E402 (notebooks/build.py writes the notebooks)

NAMES = list(build.NOTEBOOKS)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_matches_its_source_in_build_py(name):
    committed = nbformat.read(REPO / "notebooks" / name, as_version=4)
    expected = build.NOTEBOOKS[name]()
    assert [c.source for c in committed.cells] == [c.source for c in expected], \
        "run `python notebooks/build.py` after editing it"
    assert any(c.get("outputs") for c in committed.cells if c.cell_type == "code"), \
        "committed without outputs"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_top_to_bottom(name, ptb_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("PTB_DATA_DIR", str(ptb_dir))
    monkeypatch.setenv("PTB_LSTM_NOTEBOOK_STEPS", "10")
    monkeypatch.setenv("PTB_LSTM_REPO", str(REPO))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    started = time.perf_counter()
    # allow_errors: every cell runs and its error lands in its outputs, so that the assertion
    # below sees each failing cell (without it, execute() raises at the first one).
    NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [f"{o.ename}: {o.evalue}" for c in notebook.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert images, "every notebook draws at least one figure"
    print(f"{name}: {time.perf_counter() - started:.0f} s")
