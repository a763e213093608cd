"""Run set-up (ptb_lstm.runs): where a run goes and which config, weights and vocabulary it
starts from."""

import numpy as np
import pytest

from ptb_lstm import checkpoint
from ptb_lstm.config import PRESETS
from ptb_lstm.errors import UserError
from ptb_lstm.params import init_params
from ptb_lstm.runs import RunClaim, RunRequest, claim_new_run_dir, prepare

from conftest import write_corpus


@pytest.fixture
def start(tmp_path):
    """A checkpoint of the tiny model with 32 units and seed 7, and the corpus it was built on."""
    from ptb_lstm.data import load_corpus

    data = write_corpus(tmp_path / "data")
    corpus = load_corpus(data)
    config = PRESETS["tiny"].replace(hidden_size=32, seed=7)
    params = init_params(config, corpus.vocab_size, np.float64, seed=11)
    path = checkpoint.save(
        tmp_path / "start.npz",
        checkpoint.Checkpoint(
            params, corpus.vocab, config, {"epoch": 1, "step": 5}, "numpy", "float64"
        ),
    )
    return path, data, params


def test_init_from_brings_its_config_and_weights_then_set_epochs_and_seed_apply(start, tmp_path):
    path, data, params = start
    run = prepare(
        RunRequest(
            init_from=str(path),
            overrides={"learning_rate": "0.5"},
            epochs=3,
            seed=9,
            out=str(tmp_path / "run"),
        ),
        locate=lambda _: data,
    )
    assert run.config == PRESETS["tiny"].replace(
        hidden_size=32, learning_rate=0.5, epochs=3, seed=9
    )
    for name, value in params.items():
        np.testing.assert_array_equal(run.params[name], value)
    assert (run.engine, run.dtype, run.resume) == ("numpy", "float32", None)
    assert (run.log_every, run.checkpoint_every) == (100, 500)


def test_a_given_config_wins_over_the_init_from_checkpoints(start, tmp_path):
    path, data, _ = start
    with pytest.raises(UserError, match="--init-from .* pass the --config the checkpoint"):
        prepare(
            RunRequest(config="tiny", init_from=str(path), out=str(tmp_path / "run")),
            locate=lambda _: data,
        )


def test_without_config_or_checkpoint_a_run_is_the_small_preset(tmp_path):
    data = write_corpus(tmp_path / "data")
    run = prepare(RunRequest(out=str(tmp_path / "run")), locate=lambda _: data)
    assert run.config == PRESETS["small"]
    assert run.params["embedding"].shape == (run.corpus.vocab_size, 200)


def test_resume_refuses_every_flag_that_would_change_the_run(tmp_path):
    with pytest.raises(UserError, match="drop --config, --set, --seed"):
        prepare(
            RunRequest(resume=str(tmp_path), config="tiny", overrides={"seed": "2"}, seed=3),
            locate=lambda _: tmp_path,
        )


def test_run_folders_are_named_by_time_config_and_engine_and_never_reused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = claim_new_run_dir(None, "configs/mine.toml", "tf-graph")
    assert first.path.parent.name == "runs" and first.path.name.endswith("-mine-tf-graph")
    assert first.path.is_dir() and first.created
    second = claim_new_run_dir(None, "configs/mine.toml", "tf-graph")
    if second.path.name.startswith(first.path.name):  # the same second: a suffix
        assert second.path.name == first.path.name + "-2"
    assert second.path != first.path and second.path.is_dir()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="--out used already exists and holds other files"):
        claim_new_run_dir("used", "small", "numpy")
    assert (tmp_path / "used" / "notes.txt").read_text() == "keep"
    assert claim_new_run_dir("fresh", "small", "numpy").path.name == "fresh"


def test_a_claimed_folder_is_refused_to_a_second_claim_until_released(tmp_path):
    first = claim_new_run_dir(str(tmp_path / "run"), "tiny", "numpy")
    with pytest.raises(UserError, match="another ptb-lstm train is writing into this folder"):
        claim_new_run_dir(str(tmp_path / "run"), "tiny", "numpy")
    with pytest.raises(UserError, match="another ptb-lstm train is writing into this folder"):
        RunClaim.existing(tmp_path / "run", "--resume")
    first.release()
    assert not (tmp_path / "run").exists()  # created, left empty: removed
    claim_new_run_dir(str(tmp_path / "run"), "tiny", "numpy").release()


def test_the_run_set_up_takes_its_run_file_helpers_from_runfiles_not_the_trainer():
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, ptb_lstm.runs; print('ptb_lstm.train' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "False"
