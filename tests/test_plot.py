"""ptb-lstm plot: learning curves of real (tiny) runs, labelled by engine, and its errors."""

import json
import sys

import pytest

from ptb_lstm.errors import UserError
from ptb_lstm.plot import labels, load_run, plot_runs

from conftest import assert_user_error, run_cli

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two finished tiny runs on a generated corpus, one float64 with another seed."""
    from conftest import write_corpus

    root = tmp_path_factory.mktemp("plot")
    data = write_corpus(root / "data")
    runs = []
    for name, extra in (("a", []), ("b", ["--dtype", "float64", "--seed", "5"])):
        out = root / name
        result = run_cli(
            "train",
            "--config",
            "tiny",
            "--data-dir",
            str(data),
            "--out",
            str(out),
            "--log-every",
            "1",
            *extra,
        )
        assert result.returncode == 0, result.stderr
        runs.append(out)
    return runs


def test_plot_two_runs_writes_a_png_and_prints_each_result(two_runs, tmp_path):
    out = tmp_path / "curves.png"
    result = run_cli("plot", *map(str, two_runs), "--out", str(out), "--log")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 10_000
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("numpy: valid ") and "after epoch 2, test " in lines[0]
    assert lines[1].startswith("numpy float64: valid ")
    assert lines[-1] == f"wrote {out}"
    assert not list(tmp_path.glob(".*tmp*")), "the temporary file was left behind"


def test_plot_one_run_defaults_to_curves_png_in_the_run(two_runs):
    result = run_cli("plot", str(two_runs[0]))
    assert result.returncode == 0, result.stderr
    assert (two_runs[0] / "curves.png").read_bytes()[:8] == PNG


def test_the_curves_are_the_runs_records(two_runs):
    run = load_run(two_runs[0])
    records = [json.loads(line) for line in (two_runs[0] / "metrics.jsonl").open()]
    assert [r["step"] for r in run.steps] == [r["step"] for r in records if r["event"] == "step"]
    assert [r["valid_perplexity"] for r in run.epochs] == [
        r["valid_perplexity"] for r in records if r["event"] == "epoch"
    ]
    assert len(run.epochs) == 2 and run.test is not None and run.engine == "numpy"


def test_labels_name_the_engine_and_tell_equal_engines_apart(two_runs, tmp_path):
    a = load_run(two_runs[0])
    assert labels([a, load_run(two_runs[1])]) == ["numpy", "numpy float64"]
    assert labels([a, a]) == ["numpy (a)", "numpy (a)"]
    a.engine = "tf-graph"
    assert labels([a]) == ["tf-graph"]


def test_plot_replaces_an_existing_figure_whole(two_runs, tmp_path):
    out = tmp_path / "fig.svg"
    out.write_text("old")
    plot_runs([load_run(two_runs[0])], out)
    assert out.read_text().lstrip().startswith("<?xml")


def test_plot_errors_are_one_line(two_runs, tmp_path):
    assert_user_error(run_cli("plot", str(tmp_path / "nope")), "nope does not exist")
    (tmp_path / "empty").mkdir()
    assert_user_error(run_cli("plot", str(tmp_path / "empty")), "metrics.jsonl is missing")
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "metrics.jsonl").write_text("")
    assert_user_error(run_cli("plot", str(tmp_path / "fresh")), "no step or epoch records")
    assert_user_error(
        run_cli("plot", str(two_runs[0]), "--out", str(tmp_path / "c.jpg2")), "must end in .png"
    )
    assert_user_error(
        run_cli("plot", str(two_runs[0]), "--out", str(tmp_path / "x" / "c.png")),
        "does not exist; create it first",
    )
    assert_user_error(run_cli("plot", str(two_runs[0]), "--out", str(tmp_path)), "is a folder")


def test_plot_without_matplotlib_says_what_to_install(two_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UserError, match=r"pip install 'matplotlib>=3.7'"):
        plot_runs([load_run(two_runs[0])], tmp_path / "c.png")
