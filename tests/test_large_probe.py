"""benchmarks/large_probe.py (a short training run per engine, projected to a full PTB run) on
the tiny config and a generated corpus."""

import json
import math
import subprocess
import sys

import pytest

from ptb_lstm.config import PRESETS

from conftest import REPO, write_corpus

SCRIPT = REPO / "benchmarks" / "large_probe.py"


def probe(data_dir, *args):
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--config",
            "tiny",
            "--steps",
            "30",
            "--data-dir",
            str(data_dir),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_projection_is_a_full_ptb_run_at_the_measured_step_times(tmp_path, ptb_corpus):
    """Hours = (epochs x (train steps x train ms + valid steps x eval ms) + test steps x eval
    ms), with the steps of PTB's real splits at the config's batch shape (REFERENCE §4)."""
    data = write_corpus(tmp_path / "data", lines=(400, 10, 10))  # about 130 steps an epoch
    [row] = json.loads(probe(data, "--engine", "numpy", "--json"))
    config = PRESETS["tiny"]
    words = config.batch_size * config.num_steps
    train, valid, test = (
        (len(ids) - 1) // words for ids in (ptb_corpus.train, ptb_corpus.valid, ptb_corpus.test)
    )
    expected_ms = (
        config.epochs * (train * row["train_ms_per_step"] + valid * row["eval_ms_per_step"])
        + test * row["eval_ms_per_step"]
    )
    assert row["engine"] == "numpy" and row["steps"] == 30
    assert row["train_ms_per_step"] > 0 and row["eval_ms_per_step"] > 0
    assert row["full_run_hours"] * 3.6e6 == pytest.approx(expected_ms, rel=1e-9)
    # the child process held at least the 20 timed steps and a Python with NumPy
    assert row["wall_seconds"] >= 20 * row["train_ms_per_step"] / 1000
    assert 0.01 < row["peak_rss_gib"] < 4
    assert math.isfinite(row["train_perplexity"]) and row["train_perplexity"] > 1


def test_the_table_names_the_config_and_gives_one_row_per_engine(tmp_path):
    """Both NumPy engines train the same function from the same seed, so their training
    perplexities after the same 30 steps print alike."""
    data = write_corpus(tmp_path / "data", lines=(400, 10, 10))
    out = probe(data, "--engine", "numpy", "--engine", "numpy-reference").splitlines()
    assert out[0].startswith(
        "tiny config (2 x 16 units, batch 4 x 5, dropout 0, 2 epochs), "
        "float32, 30 training steps per engine on PTB, measured "
    )
    assert out[1].split() == [
        "engine",
        "train",
        "ms/step",
        "eval",
        "ms/step",
        "peak",
        "RSS",
        "GiB",
        "full",
        "run",
        "(h)",
        "train",
        "ppl",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in out[2:]}
    assert sorted(rows) == ["numpy", "numpy-reference"]
    assert rows["numpy"][-1] == rows["numpy-reference"][-1]
