"""benchmarks/optimizers.py (the SGD / Adam / AMSGrad comparison) end to end on a tiny config."""

import json
import subprocess
import sys

from conftest import REPO, run_cli

SCRIPT = REPO / "benchmarks" / "optimizers.py"
RATES = ["--rates", "sgd=0.5,1", "--rates", "adam=0.003,0.03", "--rates", "amsgrad=0.03"]


def tool(tmp_path, tiny_dir, *args):
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--config",
            "tiny",
            "--data-dir",
            str(tiny_dir),
            "--sweep-steps",
            "6",
            *RATES,
            "--runs",
            str(tmp_path / "runs"),
            "--results",
            str(tmp_path / "results"),
            "--figure",
            str(tmp_path / "fig.png"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    return result.stdout


def epochs_and_test(run):
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    return [r for r in records if r["event"] in ("epoch", "partial_epoch")], [
        r for r in records if r["event"] == "test"
    ]


def test_sweep_picks_each_optimizers_best_rate_and_the_runs_use_it(tmp_path, tiny_dir):
    # One main run already under way, stopped early: the tool continues it.
    stopped = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--set",
        "optimizer=adam",
        "--set",
        "learning_rate=0.03",
        "--max-steps",
        "3",
        "--out",
        str(tmp_path / "runs" / "adam"),
    )
    assert stopped.returncode == 0, stopped.stderr
    out = tool(tmp_path, tiny_dir)
    sweep = json.loads((tmp_path / "results" / "sweep.json").read_text())
    assert len(sweep["candidates"]) == 5
    for optimizer in ("sgd", "adam", "amsgrad"):
        # Each candidate's valid perplexity, read from its own run after the sweep's 6 steps.
        measured = {}
        for row in sweep["candidates"]:
            if row["optimizer"] == optimizer:
                run = tmp_path / "runs" / "sweep" / f"{optimizer}-lr{row['learning_rate']:g}"
                evaluated, _ = epochs_and_test(run)
                assert evaluated[-1]["step"] == 6
                measured[row["learning_rate"]] = evaluated[-1]["valid_perplexity"]
        assert sweep["chosen"][optimizer] == min(measured, key=measured.get)
        info = json.loads((tmp_path / "results" / optimizer / "config.json").read_text())
        assert info["config"]["optimizer"] == optimizer
        assert info["config"]["learning_rate"] == sweep["chosen"][optimizer]
        assert info["data_dir"] == "$PTB_DATA_DIR" and str(tmp_path) not in json.dumps(info)
    assert "--resume" in out and "runs/adam" in out  # the stopped run was continued
    summary = {
        r["optimizer"]: r for r in json.loads((tmp_path / "results" / "summary.json").read_text())
    }
    for optimizer, row in summary.items():
        evaluated, test = epochs_and_test(tmp_path / "runs" / optimizer)
        assert row["epochs"] == 2 and row["test_perplexity"] == test[-1]["test_perplexity"]
        assert row["valid_perplexity"] == evaluated[-1]["valid_perplexity"]
    assert (tmp_path / "fig.png").read_bytes().startswith(b"\x89PNG")


def test_a_second_invocation_keeps_every_finished_run(tmp_path, tiny_dir):
    rates = ("--rates", "sgd=1", "--rates", "adam=0.03")
    # --only trains one optimizer's sweep and run and publishes nothing ...
    alone = tool(tmp_path, tiny_dir, *rates, "--only", "adam")
    assert alone.count("$ ptb-lstm train") == 2 and "sgd" not in alone
    assert (tmp_path / "runs" / "adam" / "model.npz").is_file()
    assert not (tmp_path / "results").exists() and not (tmp_path / "fig.png").exists()
    # ... and the call without it keeps adam's two and trains the other four.
    rest = tool(tmp_path, tiny_dir, *rates)
    assert rest.count("is done; keeping it") == 2 and rest.count("$ ptb-lstm train") == 4
    before = (tmp_path / "results" / "summary.json").read_text()
    again = tool(tmp_path, tiny_dir, *rates)
    assert again.count("is done; keeping it") == 3 + 3  # the sweep's three and the three runs
    assert "$ ptb-lstm train" not in again
    assert (tmp_path / "results" / "summary.json").read_text() == before
