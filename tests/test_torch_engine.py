"""The torch engine computes what the NumPy engine computes, step for step, and shares its
checkpoints with every other engine. CPU, float64 unless said otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ptb_lstm import checkpoint
from ptb_lstm.agreement import relative
from ptb_lstm.config import PRESETS
from ptb_lstm.data import batches, load_corpus
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines import create_engine, installed_engines
from ptb_lstm.params import init_params
from ptb_lstm.train import train

from conftest import assert_user_error, run_cli, write_corpus

torch = pytest.importorskip(
    "torch", reason="the torch engine needs PyTorch: pip install 'ptb-lstm[torch]'"
)
from ptb_lstm.engines import torch_engine  # noqa: E402  (after the check that torch is there)

OTHERS = [name for name in installed_engines() if name != "torch"]
# A norm limit every step of these tests exceeds, so that clipping is always at work.
MAX_GRAD_NORM = 0.5


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return load_corpus(write_corpus(tmp_path_factory.mktemp("torch") / "c", lines=(120, 15, 15)))


def engine(name, config, params, dtype="float64"):
    return create_engine(name, config, params, dtype=dtype, device="cpu")


def run(name, config, params, corpus, dtype, steps=6):
    """Losses and gradient norms of ``steps`` training steps (learning rate 1, then 0.5), and
    the parameters afterwards."""
    trained = engine(name, config, params, dtype)
    losses, norms = [], []
    for step, (x, y) in enumerate(batches(corpus.train, config.batch_size, config.num_steps)):
        if step == steps:
            break
        masks = step_masks(config, step, dtype=np.dtype(dtype))
        losses.append(trained.train_step(x, y, 1.0 if step < 3 else 0.5, masks))
        norms.append(trained.last_grad_norm)
    return np.array(losses), np.array(norms), trained.get_params()


@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-9), ("float32", 1e-4)])
def test_clipped_training_steps_match_the_numpy_engine(dropout, dtype, tolerance, corpus):
    config = PRESETS["tiny"].replace(dropout=dropout, max_grad_norm=MAX_GRAD_NORM)
    params = init_params(config, corpus.vocab_size, np.float64)
    ref_losses, ref_norms, ref_params = run("numpy", config, params, corpus, dtype)
    losses, norms, after = run("torch", config, params, corpus, dtype)
    assert len(losses) == 6 and (ref_norms > MAX_GRAD_NORM).all()  # clipping at every step
    assert relative(ref_losses, losses) <= tolerance
    assert relative(ref_norms, norms) <= tolerance
    assert after.keys() == ref_params.keys()
    for key, value in ref_params.items():
        assert after[key].dtype == np.dtype(dtype), key
        assert relative(value, after[key]) <= tolerance, key


def test_the_embedding_gradient_counts_each_row_once(corpus):
    """A batch of one word repeated: the norm is that of the summed row (as the NumPy engine
    computes it), not of one row per position."""
    config = PRESETS["tiny"]
    params = init_params(config, corpus.vocab_size, np.float64)
    x = np.full((config.batch_size, config.num_steps), 3)
    y = np.roll(np.arange(x.size).reshape(x.shape) % corpus.vocab_size, 1)
    norms = {}
    for name in ("numpy", "torch"):
        trained = engine(name, config, params)
        trained.train_step(x, y, 1.0)
        norms[name] = trained.last_grad_norm
    assert norms["torch"] == pytest.approx(norms["numpy"], rel=1e-12)


def test_only_the_trained_words_embedding_rows_move(corpus):
    config = PRESETS["tiny"]
    params = init_params(config, corpus.vocab_size, np.float64)
    x, y = next(batches(corpus.train, config.batch_size, config.num_steps))
    trained = engine("torch", config, params)
    trained.train_step(x, y, 1.0)
    moved = np.flatnonzero((trained.get_params()["embedding"] != params["embedding"]).any(1))
    np.testing.assert_array_equal(moved, np.unique(x))


def test_the_second_pytorch_bias_stays_zero_and_untrained(corpus):
    config = PRESETS["tiny"]
    trained = engine("torch", config, init_params(config, corpus.vocab_size, np.float64))
    for x, y in list(batches(corpus.train, config.batch_size, config.num_steps))[:3]:
        trained.train_step(x, y, 1.0)
    for layer, lstm in enumerate(trained.layers):
        assert not lstm.bias_hh_l0.requires_grad
        assert not lstm.bias_hh_l0.detach().any()
        np.testing.assert_array_equal(
            lstm.bias_ih_l0.detach().numpy(), trained.get_params()[f"lstm_{layer}_bias"]
        )


def test_evaluation_logits_and_carried_state_match_the_numpy_engine(corpus):
    """Train a step, then evaluate, then take logits: each continues the state the previous
    one left; and the state read from one engine, set in the other, continues the same."""
    config = PRESETS["tiny"]
    params = init_params(config, corpus.vocab_size, np.float64)
    x, y = next(batches(corpus.train, config.batch_size, config.num_steps))
    results = {}
    for name in ("numpy", "torch"):
        e = engine(name, config, params)
        e.train_step(x, y, 1.0)
        nll = e.eval_step(y, x)
        logits = e.logits(x[:, :3])
        results[name] = (nll, logits, e.get_state(), e)
    ref_nll, ref_logits, ref_state, numpy_engine = results["numpy"]
    nll, logits, state, torch_engine = results["torch"]
    assert nll == pytest.approx(ref_nll, rel=1e-12)
    assert logits.shape == (config.batch_size, 3, corpus.vocab_size)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-10, atol=1e-12)
    for (h, c), (ref_h, ref_c) in zip(state, ref_state, strict=True):
        np.testing.assert_allclose(h, ref_h, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(c, ref_c, rtol=1e-10, atol=1e-13)
    torch_engine.set_state(numpy_engine.get_state())
    assert torch_engine.eval_step(x, y) == pytest.approx(numpy_engine.eval_step(x, y), rel=1e-12)


def test_a_new_batch_size_starts_from_a_zero_state(corpus):
    config = PRESETS["tiny"]
    params = init_params(config, corpus.vocab_size, np.float64)
    x, y = next(batches(corpus.train, config.batch_size, config.num_steps))
    fresh = engine("torch", config, params).eval_step(x[:1], y[:1])
    used = engine("torch", config, params)
    used.train_step(x, y, 1.0)
    used.set_params(params)
    assert used.eval_step(x[:1], y[:1]) == fresh


@pytest.mark.parametrize("other", OTHERS)
def test_checkpoints_pass_between_torch_and_every_other_engine(other, corpus, tmp_path):
    """What one engine writes, the other reads and computes the same from: evaluation NLL and
    logits of the loaded model, compared with those of the engine that wrote it."""
    config = PRESETS["tiny"].replace(dropout=0.5)
    params = init_params(config, corpus.vocab_size, np.float64)
    x, y = next(batches(corpus.valid, 2, 4))
    for writer, reader in (("torch", other), (other, "torch")):
        out = tmp_path / f"{writer}-to-{reader}"
        written = engine(writer, config, params)
        train(config, corpus, written, out, max_steps=4)
        saved = checkpoint.load(out / "model.npz")
        assert saved.engine == writer and saved.progress["step"] == 4
        loaded = engine(reader, saved.config, saved.params, saved.dtype)
        written.reset_state(2)
        assert loaded.eval_step(x, y) == pytest.approx(written.eval_step(x, y), rel=1e-12)
        np.testing.assert_allclose(loaded.logits(x), written.logits(x), rtol=1e-10, atol=1e-12)


def assert_same_parameters(a, b):
    with np.load(a, allow_pickle=False) as npz_a, np.load(b, allow_pickle=False) as npz_b:
        names = [k for k in npz_a.files if k != "meta" and not k.startswith("carried_")]
        assert names and sorted(names) == sorted(k for k in npz_b.files if k in names)
        for key in names:
            np.testing.assert_array_equal(npz_a[key], npz_b[key], err_msg=key)


@pytest.mark.parametrize("dropout", ["0.0", "0.3"])
def test_resume_after_max_steps_matches_an_uninterrupted_run(dropout, tmp_path):
    data = write_corpus(tmp_path / "c", lines=(400, 30, 30))
    args = [
        "--config",
        "tiny",
        "--data-dir",
        str(data),
        "--dtype",
        "float64",
        "--epochs",
        "2",
        "--set",
        f"dropout={dropout}",
        "--checkpoint-every",
        "7",
        "--engine",
        "torch",
        "--device",
        "cpu",
    ]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_cli("train", *args, "--out", str(whole)).returncode == 0
    first = run_cli("train", *args, "--out", str(parts), "--max-steps", "23")
    assert first.returncode == 0, first.stderr
    resumed = run_cli("train", "--resume", str(parts), "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr
    assert "engine torch on cpu" in resumed.stdout and "resuming" in resumed.stdout
    assert_same_parameters(whole / "model.npz", parts / "model.npz")


def test_agree_command_includes_torch(tiny_dir):
    result = run_cli(
        "agree",
        "--data-dir",
        str(tiny_dir),
        "--dtype",
        "float64",
        "--dropout",
        "0",
        "--dropout",
        "0.5",
        "--steps",
        "5",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    rows = [r for r in json.loads(result.stdout)["rows"] if r["engine"] == "torch"]
    assert [r["dropout"] for r in rows] == [0.0, 0.5]
    assert all(max(r["loss"], r["params"], r["perplexity"]) <= 1e-9 for r in rows), rows


@pytest.mark.skipif(torch_engine.cuda_available(), reason="this machine has a CUDA GPU")
def test_asking_for_a_gpu_pytorch_cannot_see_is_a_one_line_error(tiny_dir, tmp_path):
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--max-steps",
        "1",
        "--engine",
        "torch",
        "--device",
        "cuda",
        "--out",
        str(tmp_path / "r"),
    )
    assert_user_error(result, "--device cuda: PyTorch sees no CUDA GPU")
