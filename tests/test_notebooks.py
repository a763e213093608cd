"""The notebooks of the course run top to bottom, so they never rot."""

import ast
import base64
import subprocess
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO

sys.path.insert(0, str(REPO / "notebooks"))
import build  # noqa: E402 (notebooks/build.py builds the notebooks from their sources)

NAMES = build.NOTEBOOKS


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_matches_its_percent_source(name):
    committed = nbformat.read(REPO / "notebooks" / name, as_version=4)
    expected = build.cells(name)
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in expected
    ], f"run `python notebooks/build.py --only {name}` after editing {build.source_of(name).name}"
    assert [c.metadata.get("figure") for c in committed.cells] == [
        c.metadata.get("figure") for c in expected
    ], "figure names differ from the source's"
    assert any(c.get("outputs") for c in committed.cells if c.cell_type == "code"), (
        "committed without outputs"
    )


@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_top_to_bottom(name, ptb_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("PTB_DATA_DIR", str(ptb_dir))
    monkeypatch.setenv("PTB_LSTM_NOTEBOOK_STEPS", "10")
    monkeypatch.setenv("PTB_LSTM_REPO", str(REPO))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("PTB_LSTM_INSIDE_WORDS", "500")  # Part V: valid words it reads
    for variable in build.CHECKPOINTS.get(name, ()):
        monkeypatch.delenv(variable, raising=False)  # Part V trains its short stand-ins
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    started = time.perf_counter()
    # allow_errors: every cell runs and its error lands in its outputs, so that the assertion
    # below sees each failing cell (without it, execute() raises at the first one).
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [
        f"{o.ename}: {o.evalue}"
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors, errors
    images = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert images, "every notebook draws at least one figure"
    printed = "".join(
        o.get("text", "")
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream"
    )
    assert "short runs of 10 steps" in printed, "PTB_LSTM_NOTEBOOK_STEPS did not reach the notebook"
    print(f"{name}: {time.perf_counter() - started:.0f} s")


def test_a_built_notebook_is_valid_with_its_sources_cells_and_a_python_kernel(tmp_path):
    path = build.write("3_tf_graph.ipynb", folder=tmp_path)
    built = nbformat.read(path, as_version=4)
    nbformat.validate(built)
    assert [c.source for c in built.cells] == [c.source for c in build.cells("3_tf_graph.ipynb")]
    assert built.metadata["kernelspec"]["name"] == "python3"
    assert not any(c.get("outputs") for c in built.cells if c.cell_type == "code")


def test_percent_cells_become_code_and_markdown_cells_with_their_figure_names(tmp_path):
    source = tmp_path / "tiny.py"
    source.write_text(
        "# %% [markdown]\n# # Title\n#\n# Some *text*.\n\n"
        "# %%\nx = 1\n\ny = x + 1\n\n\n"
        '# %% figure="tiny-plot"\nprint(y)\n'
    )
    cells = build.read_cells(source)
    assert [(c.cell_type, c.source) for c in cells] == [
        ("markdown", "# Title\n\nSome *text*."),
        ("code", "x = 1\n\ny = x + 1"),
        ("code", "print(y)"),
    ]
    assert [dict(c.metadata) for c in cells] == [{}, {}, {"figure": "tiny-plot"}]


def test_a_named_figure_is_exported_from_its_cells_first_image(tmp_path):
    png = b"\x89PNG\r\n\x1a\n not a real image, only bytes to copy"
    notebook = nbformat.v4.new_notebook()
    named = nbformat.v4.new_code_cell("plot()", metadata={"figure": "shown"})
    named.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"},
        )
    ]
    unnamed = nbformat.v4.new_code_cell("plot()")
    unnamed.outputs = list(named.outputs)
    notebook.cells = [named, unnamed]
    nbformat.write(notebook, tmp_path / "n.ipynb")
    written = build.export_figures(tmp_path / "n.ipynb", folder=tmp_path)
    assert written == [tmp_path / "shown.png"]
    assert (tmp_path / "shown.png").read_bytes() == png


def test_a_helper_defined_in_several_notebooks_is_defined_alike():
    # The three notebooks repeat their set-up and results helpers (each runs on its own);
    # a fix to one copy must reach the others.
    definitions: dict[str, dict[str, str]] = {}
    for name in NAMES:
        for cell in build.cells(name):
            if cell.cell_type != "code":
                continue
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef):
                    names = [node.name]
                elif isinstance(node, ast.Assign):
                    names = [
                        t.id
                        for t in node.targets
                        if isinstance(t, ast.Name) and t.id.isupper() and len(t.id) > 1
                    ]  # not E, T
                else:
                    continue
                for defined in names:
                    text = ast.get_source_segment(cell.source, node)
                    definitions.setdefault(defined, {})[name] = text
    shared = {d: texts for d, texts in definitions.items() if len(texts) > 1}
    assert {"show_source", "full_run", "results_table", "STEPS", "PUBLISHED"} <= set(shared)
    assert {"relative_error", "verdict"} <= set(shared)  # Parts I and IV: one measure, one check
    differing = [d for d, texts in shared.items() if len(set(texts.values())) > 1]
    assert not differing, f"defined differently in different notebooks: {differing}"


@pytest.mark.parametrize("name", ["1_numpy.ipynb", "4_torch.ipynb"])
def test_exercise_checks_call_a_stub_not_yet_done_pass_the_solutions_and_refuse_wrong_answers(name):
    # Read from the committed notebook, whose outputs the first test ties to the current source.
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    lines = "".join(
        o.text
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream"
    ).splitlines()
    solutions, wrong = lines.index("--- the solutions"), lines.index("--- the wrong answers")

    def verdicts(part):
        return dict(line.split(": ", 1) for line in part if line.startswith("exercise "))

    stubs = verdicts(lines[:solutions])
    passed, refused = verdicts(lines[solutions:wrong]), verdicts(lines[wrong:])
    assert len(stubs) >= 3
    assert set(stubs) == set(passed) == set(refused)
    assert all(v.startswith("not yet done") for v in stubs.values()), stubs
    assert all(v == "pass" for v in passed.values()), passed
    assert all(v.startswith("WRONG") for v in refused.values()), refused


def test_part_v_is_not_built_without_its_trained_checkpoints(monkeypatch):
    for variable in build.CHECKPOINTS["5_inside.ipynb"]:
        monkeypatch.delenv(variable, raising=False)
    before = (REPO / "notebooks" / "5_inside.ipynb").read_bytes()
    result = subprocess.run(
        [sys.executable, str(REPO / "notebooks" / "build.py"), "--only", "5_inside.ipynb"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "PTB_LSTM_SMALL_CKPT" in result.stderr
    assert "Traceback" not in result.stderr
    assert (REPO / "notebooks" / "5_inside.ipynb").read_bytes() == before
