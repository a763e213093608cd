"""make reproduce (benchmarks/reproduce.py) end to end on a tiny config and generated data."""

import json
import re
import subprocess
import sys

from conftest import REPO, run_cli

SCRIPT = REPO / "benchmarks" / "reproduce.py"


def reproduce(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=600)


def test_reproduce_resumes_evaluates_publishes_and_writes_the_table(tiny_dir, tmp_path):
    run = tmp_path / "runs" / "numpy"
    partial = run_cli("train", "--config", "tiny", "--data-dir", str(tiny_dir), "--out", str(run),
                      "--max-steps", "3", "--checkpoint-every", "1")
    assert partial.returncode == 0, partial.stderr
    results, doc = tmp_path / "results", tmp_path / "results.md"
    doc.write_text("# Results\n\nbefore\n<!-- results:start -->\nold table\n"
                   "<!-- results:end -->\nafter\n")
    figure = tmp_path / "fig" / "curves.png"
    done = reproduce("--engine", "numpy", "--run", f"numpy={run}", "--config", "tiny",
                     "--data-dir", str(tiny_dir), "--results", str(results), "--doc", str(doc),
                     "--figure", str(figure))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ptb-lstm train --resume" in done.stdout  # the interrupted run was continued

    metrics = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    test = [r for r in metrics if r["event"] == "test"][-1]  # the first is the stop at step 3
    evaluations = json.loads((results / "numpy" / "evaluations.json").read_text())
    assert [(e["split"], e["batch_size"], e["num_steps"]) for e in evaluations] == [
        ("valid", 4, 5), ("test", 4, 5), ("valid", 1, 1), ("test", 1, 1)]  # tiny: 4 x 5
    assert evaluations[1]["perplexity"] == test["test_perplexity"]
    assert not (results / "numpy" / "model.npz").exists()  # checkpoints are not published
    assert (results / "numpy" / "metrics.jsonl").read_text() == \
        (run / "metrics.jsonl").read_text()

    text = doc.read_text()
    assert text.startswith("# Results\n\nbefore\n<!-- results:start -->\n")
    assert text.rstrip().endswith("<!-- results:end -->\nafter") and "old table" not in text
    row = next(line for line in text.splitlines() if line.startswith("| **ptb-lstm numpy**"))
    assert f"**{test['test_perplexity']:.2f}**" in row
    assert "| Zaremba et al. 2015, Table 1 |" in text and "120.7" in text
    assert "ptb-lstm train --config tiny" in text  # the command that made the run
    assert figure.read_bytes()[:4] == b"\x89PNG"
    # two processes trained it: the run's clock (run_time) goes on from the first one's
    first = max(r["run_time"] for r in metrics if r["step"] <= 3)
    carried = test["run_time"] - test["wall_time"]  # the run's time before this process
    assert 0 < carried <= first
    assert f"| {test['run_time'] / 60:.1f} min |" in row

    again = reproduce("--collect-only", "--results", str(results), "--doc", str(doc),
                      "--figure", str(figure))
    assert again.returncode == 0, again.stderr
    assert doc.read_text().count("<!-- results:start -->") == 1


def test_reproduce_never_clears_a_folder_that_is_not_a_run(tiny_dir, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = reproduce("--engine", "numpy", "--run", f"numpy={folder}", "--config", "tiny",
                       "--data-dir", str(tiny_dir), "--results", str(tmp_path / "results"))
    assert result.returncode != 0
    assert "does not look like a run folder" in result.stderr and "Traceback" not in result.stderr
    assert (folder / "notes.txt").read_text() == "keep me"


def test_medium_section_tables_a_run_under_way_epoch_by_epoch(tiny_dir, tmp_path):
    """--config medium --progress publishes an unfinished run (no evaluations) and writes its
    per-epoch table and the per-epoch figure; the home folder is shown as ~."""
    run = tmp_path / "runs" / "numpy"
    done = run_cli("train", "--config", "tiny", "--data-dir", str(tiny_dir), "--out", str(run),
                   "--epochs", "3", "--set", "dropout=0.5", "--max-steps", "40")
    assert done.returncode == 0, done.stderr
    results, doc = tmp_path / "results", tmp_path / "results.md"
    doc.write_text("# R\n<!-- results-medium:start -->\nold\n<!-- results-medium:end -->\n")
    figure = tmp_path / "medium.png"
    made = reproduce("--config", "medium", "--progress", "--run", f"numpy={run}",
                     "--results", str(results), "--doc", str(doc), "--figure", str(figure))
    assert made.returncode == 0, made.stdout + made.stderr
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    epochs = [r for r in epochs if r["event"] == "epoch"]
    assert epochs, "the tiny run should have finished at least one epoch"
    text = doc.read_text()
    assert "\nold\n" not in text and "Machine:" not in text
    assert f"under way: {len(epochs)} of 3 epochs" in text
    for record in epochs:
        assert f"| {record['epoch']} | " in text
        assert f"{record['valid_perplexity']:.2f}" in text
    best = min(epochs, key=lambda r: r["valid_perplexity"])
    verdict = "reached" if best["valid_perplexity"] <= 88.0 else "not reached yet"
    assert (f"Best valid perplexity so far: {best['valid_perplexity']:.2f} "
            f"(epoch {best['epoch']}), against the target of <= 88") in text
    assert text.split("at the training batch shape: ")[1].startswith(verdict + ".")
    assert "Test, and valid and test at 1 x 1, are evaluated when the run has finished." in text
    assert re.search(r"rebuilt \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", text)
    assert not (results / "numpy" / "evaluations.json").exists()
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_wall_time_of_a_run_without_run_time_sums_its_processes(tmp_path):
    """Runs written before run_time existed restart wall_time in each process: the table's
    wall time is the sum of each process's last record."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import reproduce as script

    folder = tmp_path / "numpy"
    folder.mkdir()
    clocks = [10.0, 20.0, 30.0, 5.0, 15.0, 2.0]  # three processes: 30 + 15 + 2 seconds
    (folder / "metrics.jsonl").write_text("".join(
        json.dumps({"event": "step", "step": 100 * (i + 1), "epoch": 1, "perplexity": 100.0,
                    "wall_time": clock}) + "\n" for i, clock in enumerate(clocks)))
    assert script.wall_seconds(folder) == 47.0
