"""benchmarks/inside_compare.py on two tiny models (without and with dropout) trained here."""

import json
import subprocess
import sys

import numpy as np
import pytest

from ptb_lstm import checkpoint, look
from ptb_lstm.data import load_corpus

from conftest import REPO, run_cli, write_corpus

SCRIPT = REPO / "benchmarks" / "inside_compare.py"


def train(data, out, *args):
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "1",
        *args,
    )
    assert result.returncode == 0, result.stderr
    return out / "model.npz"


def test_the_comparison_reports_what_each_model_measures(tmp_path):
    data = write_corpus(tmp_path / "tiny")
    plain = train(data, tmp_path / "plain")
    dropout = train(data, tmp_path / "dropout", "--set", "dropout=0.5")
    figures, record_path = tmp_path / "figures", tmp_path / "inside.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(plain), str(dropout), "--data-dir", str(data)]
        + ["--limit", "70", "--figures", str(figures), "--json", str(record_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "layer_2 silent_fraction" not in result.stdout  # the table names its rows in full
    assert "layer_2 mean_silent_fraction" in result.stdout
    for name in ("inside-saturation.png", "inside-activations.png"):
        assert (figures / name).read_bytes().startswith(b"\x89PNG")
    record = json.loads(record_path.read_text())
    assert record["tokens"] == 70
    for name, path in (("small", plain), ("medium", dropout)):
        ckpt = checkpoint.load(path)
        ids = load_corpus(data, vocab=ckpt.vocab).valid
        reading = look.read_corpus(look.reference_engine(ckpt), ckpt.vocab, ids, "valid", 70)
        layer = record["models"][name]["layer_2"]
        assert layer["mean_silent_fraction"] == pytest.approx(reading.silent[1].mean())
        assert layer["mean_abs_cell"] == pytest.approx(reading.mean_abs_cell[1].mean())
        forget = layer["gates"]["f"]
        assert forget["mean_above_high"] == pytest.approx(reading.high[1, 1].mean())
        assert forget["units_mostly_high"] == pytest.approx((reading.high[1, 1] > 0.5).mean())
    change = record["difference"]["medium - small"]["layer_1"]["mean_abs_cell"]
    models = record["models"]
    assert change == pytest.approx(
        models["medium"]["layer_1"]["mean_abs_cell"] - models["small"]["layer_1"]["mean_abs_cell"]
    )
    neighbours = record["neighbours"]
    assert neighbours["words"]  # the tiny vocabulary holds none of PTB's words: its own
    expected = np.mean(
        [look.neighbours(checkpoint.load(plain), w, 10)["overlap"] for w in neighbours["words"]]
    )
    assert neighbours["embedding_vs_softmax"][0] == pytest.approx(expected)
