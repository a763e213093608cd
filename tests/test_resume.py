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
    return [
        "--config",
        "tiny",
        "--data-dir",
        str(corpus_dir),
        "--dtype",
        "float64",
        "--epochs",
        "2",
        "--set",
        f"dropout={dropout}",
        "--checkpoint-every",
        "7",
    ]


@pytest.mark.parametrize("dropout", ["0.0", "0.3"])
def test_resume_after_max_steps_matches_an_uninterrupted_run(corpus_dir, tmp_path, dropout):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_cli("train", *common(corpus_dir, dropout), "--out", str(whole)).returncode == 0
    first = run_cli("train", *common(corpus_dir, dropout), "--out", str(parts), "--max-steps", "23")
    assert first.returncode == 0, first.stderr
    assert "--resume" in first.stdout
    second = run_cli("train", "--resume", str(parts))
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stdout
    assert_same(whole / "model.npz", parts / "model.npz")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_ctrl_c_saves_a_checkpoint_and_resume_finishes_identically(tmp_path, sig):
    corpus = write_corpus(tmp_path / "big", lines=(6000, 30, 30))
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
        "0",
    ]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_cli("train", *args, "--out", str(whole)).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "ptb_lstm", "train", *args, "--out", str(parts), "--log-every", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = parts / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or metrics.stat().st_size < 2000):
        time.sleep(0.05)
    process.send_signal(sig)
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
    run_cli(
        "train", "--config", "tiny", "--data-dir", str(tiny_dir), "--out", str(out), "--epochs", "1"
    )
    assert_user_error(run_cli("train", "--resume", str(out)), "already finished")


def test_resume_refuses_conflicting_settings(tmp_path):
    assert_user_error(run_cli("train", "--resume", str(tmp_path), "--config", "small"), "--config")


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


ADAM = [
    "--set",
    "beta1=0.8",
    "--set",
    "beta2=0.95",
    "--set",
    "epsilon=1e-6",
    "--set",
    "learning_rate=0.01",
]


def optimizer_arrays(path):
    return {k: v for k, v in params(path).items() if k.startswith("optimizer_")}


@pytest.mark.parametrize("optimizer", ["adam", "amsgrad"])
def test_adam_and_amsgrad_runs_resume_to_the_same_parameters_and_state(
    optimizer, corpus_dir, tmp_path
):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    args = [*common(corpus_dir, "0.3"), "--set", f"optimizer={optimizer}", *ADAM]
    assert run_cli("train", *args, "--out", str(whole)).returncode == 0
    assert run_cli("train", *args, "--out", str(parts), "--max-steps", "23").returncode == 0
    assert int(optimizer_arrays(parts / "model.npz")["optimizer_t"]) == 23
    resumed = run_cli("train", "--resume", str(parts))
    assert resumed.returncode == 0, resumed.stderr
    assert_same(whole / "model.npz", parts / "model.npz")
    state = optimizer_arrays(parts / "model.npz")
    assert int(state["optimizer_t"]) > 23
    assert ("optimizer_vmax_embedding" in state) == (optimizer == "amsgrad")


@pytest.mark.parametrize("engine", other_engines())
def test_every_engine_resumes_amsgrad_exactly(engine, tmp_path):
    """In one process (the trainer and run folders of the command line, without a process
    start per engine): stopped at step 11 mid-epoch, resumed in a new engine from model.npz."""
    from ptb_lstm import checkpoint
    from ptb_lstm.config import PRESETS
    from ptb_lstm.data import load_corpus
    from ptb_lstm.engines import create_engine
    from ptb_lstm.params import init_params
    from ptb_lstm.runs import resume_point
    from ptb_lstm.train import train

    corpus = load_corpus(write_corpus(tmp_path / "c", lines=(120, 20, 20)))
    config = PRESETS["tiny"].replace(
        optimizer="amsgrad", beta1=0.8, beta2=0.95, epsilon=1e-6, learning_rate=0.01, epochs=2
    )
    start = init_params(config, corpus.vocab_size, np.float64)
    train(config, corpus, create_engine(engine, config, start, "float64"), tmp_path / "whole")
    train(
        config,
        corpus,
        create_engine(engine, config, start, "float64"),
        tmp_path / "parts",
        max_steps=11,
        checkpoint_every=5,
    )
    saved = checkpoint.load(tmp_path / "parts" / "model.npz")
    assert int(saved.optimizer["t"]) == 11
    train(
        config,
        corpus,
        create_engine(engine, config, saved.params, "float64"),
        tmp_path / "parts",
        resume=resume_point(saved, tmp_path / "parts"),
    )
    assert_same(tmp_path / "whole" / "model.npz", tmp_path / "parts" / "model.npz")


def test_resume_refuses_an_adam_checkpoint_without_its_state(corpus_dir, tmp_path):
    from ptb_lstm import checkpoint

    out = tmp_path / "run"
    args = [*common(corpus_dir), "--set", "optimizer=adam", *ADAM]
    assert run_cli("train", *args, "--out", str(out), "--max-steps", "9").returncode == 0
    saved = checkpoint.load(out / "model.npz")
    saved.optimizer = None
    checkpoint.save(out / "model.npz", saved)
    assert_user_error(run_cli("train", "--resume", str(out)), "no adam state", "--init-from")


def test_init_from_starts_a_fresh_optimizer_and_says_so(corpus_dir, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    args = [*common(corpus_dir), "--set", "optimizer=amsgrad", *ADAM]
    assert run_cli("train", *args, "--out", str(first), "--max-steps", "9").returncode == 0
    again = run_cli(
        "train",
        "--init-from",
        str(first / "model.npz"),
        "--data-dir",
        str(corpus_dir),
        "--dtype",
        "float64",
        "--out",
        str(second),
        "--max-steps",
        "2",
    )
    assert again.returncode == 0, again.stderr
    assert "the amsgrad optimizer starts afresh (t = 0, m, v, vmax zero)" in again.stdout
    assert int(optimizer_arrays(second / "model.npz")["optimizer_t"]) == 2
