"""Interrupted runs continue to the very parameters of an uninterrupted one."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import assert_user_error, other_engines, run_cli, write_corpus


def params(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k != "meta" and not k.startswith("carried_")}


def assert_same(a, b):
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for key in pa:
        np.testing.assert_array_equal(pa[key], pb[key], err_msg=key)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("resume") / "c", lines=(400, 30, 30))


def common(corpus_dir, dropout="0.0"):
    return ["--config", "tiny", "--data-dir", str(corpus_dir), "--dtype", "float64",
            "--epochs", "2", "--set", f"dropout={dropout}", "--checkpoint-every", "7"]


@pytest.mark.parametrize("dropout", ["0.0", "0.3"])
def test_resume_after_max_steps_matches_an_uninterrupted_run(corpus_dir, tmp_path, dropout):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_cli("train", *common(corpus_dir, dropout), "--out", str(whole)).returncode == 0
    first = run_cli("train", *common(corpus_dir, dropout), "--out", str(parts),
                    "--max-steps", "23")
    assert first.returncode == 0, first.stderr
    assert "--resume" in first.stdout
    second = run_cli("train", "--resume", str(parts))
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stdout
    assert_same(whole / "model.npz", parts / "model.npz")


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes_identically(tmp_path):
    corpus = write_corpus(tmp_path / "big", lines=(6000, 30, 30))
    args = ["--config", "tiny", "--data-dir", str(corpus), "--dtype", "float64", "--epochs",
            "2", "--checkpoint-every", "0"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_cli("train", *args, "--out", str(whole)).returncode == 0
    process = subprocess.Popen([sys.executable, "-m", "ptb_lstm", "train", *args, "--out",
                                str(parts), "--log-every", "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    metrics = parts / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or metrics.stat().st_size < 2000):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    # The advice is a command that runs as printed (here spelled python -m ptb_lstm).
    command = err.split("Resume with: ", 1)[1].splitlines()[0]
    assert " train --resume " in command
    resumed = subprocess.run(command, shell=True, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert_same(whole / "model.npz", parts / "model.npz")
    epochs = [line for line in metrics.read_text().splitlines() if '"event": "epoch"' in line]
    assert len(epochs) == 2


def test_resume_of_a_finished_run_says_so(tiny_dir, tmp_path):
    out = tmp_path / "run"
    run_cli("train", "--config", "tiny", "--data-dir", str(tiny_dir), "--out", str(out),
            "--epochs", "1")
    assert_user_error(run_cli("train", "--resume", str(out)), "already finished")


def test_resume_refuses_conflicting_settings(tmp_path):
    assert_user_error(run_cli("train", "--resume", str(tmp_path), "--config", "small"),
                      "--config")


@pytest.mark.parametrize("engine", other_engines())
def test_every_engine_resumes_exactly_without_dropout(engine, corpus_dir, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    args = [*common(corpus_dir), "--engine", engine]
    assert run_cli("train", *args, "--out", str(whole)).returncode == 0
    assert run_cli("train", *args, "--out", str(parts), "--max-steps", "23").returncode == 0
    resumed = run_cli("train", "--resume", str(parts))
    assert resumed.returncode == 0, resumed.stderr
    assert f"engine {engine}" in resumed.stdout
    assert_same(whole / "model.npz", parts / "model.npz")
