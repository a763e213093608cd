"""Faults and bad input: nothing lost, nothing trusted blindly, one clear line each."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ptb_lstm import checkpoint
from ptb_lstm.metrics import read_metrics

from conftest import assert_user_error, run_cli, write_corpus


def tiny_run(tiny_dir, out, *extra):
    result = run_cli(
        "train", "--config", "tiny", "--data-dir", str(tiny_dir), "--out", str(out), *extra
    )
    assert result.returncode == 0, result.stderr
    return out / "model.npz"


# -- crash safety --------------------------------------------------------------------------


def _last_step(metrics: Path) -> int:
    records = read_metrics(metrics) if metrics.exists() else []
    return max((r.get("step", 0) for r in records), default=0)


def test_sigkill_at_random_moments_never_corrupts_and_resume_finishes_identically(tmp_path):
    corpus = write_corpus(tmp_path / "c", lines=(3000, 30, 30))
    args = [
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--dtype",
        "float64",
        "--epochs",
        "2",
        "--checkpoint-every",
        "3",
        "--log-every",
        "1",
    ]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert run_cli("train", *args, "--out", str(whole)).returncode == 0
    total = _last_step(whole / "metrics.jsonl")
    rng = random.Random(7)
    targets = sorted(rng.sample(range(10, total - 10), 4))  # kill when these steps are logged
    command = [sys.executable, "-m", "ptb_lstm", "train", *args, "--out", str(broken)]
    for target in targets:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while (
            process.poll() is None
            and time.time() < deadline
            and _last_step(broken / "metrics.jsonl") < target
        ):
            time.sleep(0.002)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
        checkpoint.load(broken / "model.npz")  # never half-written
        lines = (broken / "metrics.jsonl").read_text().splitlines()
        assert len(read_metrics(broken / "metrics.jsonl")) >= len(lines) - 1
        command = [sys.executable, "-m", "ptb_lstm", "train", "--resume", str(broken)]
    final = run_cli("train", "--resume", str(broken))
    assert final.returncode == 0, final.stderr
    with np.load(whole / "model.npz") as a, np.load(broken / "model.npz") as b:
        for key in a.files:
            if key != "meta":
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not list(broken.glob(".*.tmp"))
    steps = [r["step"] for r in read_metrics(broken / "metrics.jsonl") if r["event"] == "step"]
    assert steps == list(range(1, total + 1))  # each step logged once, in order


def test_divergence_stops_with_the_step_and_the_last_good_checkpoint(tiny_dir, tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--out",
        str(out),
        "--set",
        "learning_rate=1e38",
        "--checkpoint-every",
        "1",
    )
    assert_user_error(result, "diverged at step", "last good checkpoint")
    checkpoint.load(out / "model.npz")  # the checkpoint it names is intact
    assert "RuntimeWarning" not in result.stderr


# -- bad input, each a one-line error with exit status 2 ---------------------------------


def test_empty_data_file(tiny_dir):
    (tiny_dir / "ptb.test.txt").write_text("")
    assert_user_error(
        run_cli("data", "--data-dir", str(tiny_dir)), "ptb.test.txt", "holds no words"
    )


def test_data_folder_missing_a_split(tiny_dir):
    (tiny_dir / "ptb.train.txt").unlink()
    assert_user_error(run_cli("data", "--data-dir", str(tiny_dir)), "lacks ptb.train.txt")


def test_words_missing_from_the_checkpoint_vocabulary(tiny_dir, tmp_path):
    model = tiny_run(tiny_dir, tmp_path / "run", "--max-steps", "0")
    with open(tiny_dir / "ptb.valid.txt", "a") as f:
        f.write("w1 aardvark w2\n")
    result = run_cli(
        "evaluate", "--checkpoint", str(model), "--data-dir", str(tiny_dir), "--split", "valid"
    )
    assert_user_error(result, "ptb.valid.txt", "'aardvark'", "not in the model's vocabulary")


def _rewrite(path: Path, change) -> None:
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(path, **arrays)


def test_checkpoint_of_another_format_version(tiny_dir, tmp_path):
    model = tiny_run(tiny_dir, tmp_path / "run", "--max-steps", "0")

    def bump(arrays):
        meta = json.loads(arrays["meta"].tobytes()) | {"version": 2}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)

    _rewrite(model, bump)
    assert_user_error(run_cli("inspect", str(model)), "format version 2")


def test_array_of_the_wrong_shape(tiny_dir, tmp_path):
    model = tiny_run(tiny_dir, tmp_path / "run", "--max-steps", "0")
    _rewrite(model, lambda a: a.update(lstm_1_bias=np.zeros(7, np.float32)))
    assert_user_error(run_cli("inspect", str(model)), "lstm_1_bias has shape (7,)")


def test_array_of_the_wrong_dtype(tiny_dir, tmp_path):
    model = tiny_run(tiny_dir, tmp_path / "run", "--max-steps", "0")
    _rewrite(model, lambda a: a.update(softmax_bias=a["softmax_bias"].astype(np.int64)))
    assert_user_error(run_cli("inspect", str(model)), "softmax_bias has dtype int64")


def test_pickled_object_inside_an_npz(tmp_path):
    path = tmp_path / "model.npz"
    np.savez(path, meta=np.frombuffer(b"{}", np.uint8), embedding=np.array([object()]))
    assert_user_error(run_cli("inspect", str(path)), "pickled object")


def test_invalid_toml(tiny_dir, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("hidden_size = [unclosed")
    result = run_cli("train", "--config", str(config), "--data-dir", str(tiny_dir))
    assert_user_error(result, "bad.toml", "not valid TOML")


@pytest.mark.parametrize(
    "flag",
    [
        ["--set", "batch_size=0"],
        ["--set", "num_layers=-1"],
        ["--epochs", "0"],
        ["--max-steps", "-3"],
    ],
)
def test_zero_or_negative_sizes(tiny_dir, tmp_path, flag):
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--out",
        str(tmp_path / "run"),
        *flag,
    )
    assert_user_error(result, flag[1].split("=")[0] if flag[0] == "--set" else flag[0])
    assert not (tmp_path / "run").exists()
