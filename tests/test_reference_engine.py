"""The reference engine (numpy-reference): its gradients are right, and the fast `numpy`
engine computes exactly what it computes."""

import json

import numpy as np
import pytest

from ptb_lstm.config import PRESETS
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines import create_engine
from ptb_lstm.gradcheck import TOLERANCE, gradcheck
from ptb_lstm.params import init_params

from conftest import run_cli

STEPS = 6
# Below every step's global gradient norm at these shapes (about 1 to 2.5), so that every
# step of the comparison clips; asserted in the test.
MAX_GRAD_NORM = 0.5


def relative(reference, other) -> float:
    reference = np.asarray(reference, np.float64)
    return float(np.abs(reference - other).max() / np.abs(reference).max())


def run_both(config, vocab_size: int):
    """STEPS float64 training steps of both engines from the same weights on the same random
    batches (the state carried from step to step) with the masks ptb_lstm.dropout draws."""
    params = init_params(config, vocab_size, np.float64)
    rng = np.random.default_rng(7)
    T = config.num_steps
    ids = rng.integers(0, vocab_size, size=(config.batch_size, STEPS * T + 1))
    engines = {
        name: create_engine(name, config, params, "float64")
        for name in ("numpy-reference", "numpy")
    }
    losses = {name: [] for name in engines}
    norms = {name: [] for name in engines}
    for step in range(STEPS):
        x, y = ids[:, step * T : (step + 1) * T], ids[:, step * T + 1 : (step + 1) * T + 1]
        masks = step_masks(config, step, dtype=np.float64)
        rate = 1.0 if step < 3 else 0.5
        for name, engine in engines.items():
            losses[name].append(engine.train_step(x, y, rate, masks))
            norms[name].append(engine.last_grad_norm)
    return engines, losses, norms


SHAPES = {
    "tiny": (PRESETS["tiny"], 50),
    "small": (PRESETS["small"], 10_000),  # hidden 200, batch 20 x 20 steps, PTB's vocabulary
}


@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_numpy_engine_equals_the_reference_with_clipping(shape, dropout):
    config, vocab_size = SHAPES[shape]
    config = config.replace(dropout=dropout, max_grad_norm=MAX_GRAD_NORM)
    engines, losses, norms = run_both(config, vocab_size)
    assert all(n > MAX_GRAD_NORM for n in norms["numpy-reference"]), "every step must clip"
    loss_diff = max(
        abs(a - b) / abs(a) for a, b in zip(losses["numpy-reference"], losses["numpy"], strict=True)
    )
    norm_diff = relative(norms["numpy-reference"], norms["numpy"])
    reference, fast = engines["numpy-reference"].get_params(), engines["numpy"].get_params()
    param_diffs = {name: relative(reference[name], fast[name]) for name in reference}
    worst = max(param_diffs, key=param_diffs.get)
    print(
        f"{shape} dropout {dropout}: losses {loss_diff:.1e}, gradient norms {norm_diff:.1e}, "
        f"parameters {param_diffs[worst]:.1e} ({worst})"
    )
    assert loss_diff <= 1e-12
    assert norm_diff <= 1e-12
    assert param_diffs[worst] <= 1e-12, worst
    # The steps moved the parameters: equal after them is not equal by standing still.
    start = init_params(config, vocab_size, np.float64)
    assert all(relative(start[n], reference[n]) > 1e-6 for n in reference)
    for (h, c), (fh, fc) in zip(
        engines["numpy-reference"].get_state(), engines["numpy"].get_state(), strict=True
    ):
        assert relative(h, fh) <= 1e-12 and relative(c, fc) <= 1e-12


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_reference_gradients_match_central_differences(dropout):
    rows = gradcheck(engine="numpy-reference", dropout=dropout)
    names = {row.name for row in rows}
    assert {"embedding", "lstm_1_recurrent_kernel", "softmax_bias", "state_0_c"} <= names
    assert max(row.error for row in rows) <= TOLERANCE, [r.summary() for r in rows]


def test_uniform_prediction_costs_log_vocab_per_word():
    """With a zero softmax layer every word gets probability 1/V: the loss of a batch (summed
    over time, averaged over the batch) is T log V, and its NLL sum B T log V."""
    config, vocab_size = PRESETS["tiny"], 37
    params = init_params(config, vocab_size, np.float64)
    params["softmax_kernel"][:] = 0
    params["softmax_bias"][:] = 0
    engine = create_engine("numpy-reference", config, params, "float64")
    rng = np.random.default_rng(0)
    x, y = (rng.integers(0, vocab_size, (config.batch_size, config.num_steps)) for _ in "xy")
    T, B = config.num_steps, config.batch_size
    assert engine.eval_step(x, y) == pytest.approx(B * T * np.log(vocab_size), rel=1e-14)
    assert engine.train_step(x, y, 1.0) == pytest.approx(T * np.log(vocab_size), rel=1e-14)


def test_float32_follows_float64():
    config, vocab_size = PRESETS["tiny"], 50
    params = init_params(config, vocab_size, np.float64)
    rng = np.random.default_rng(3)
    x, y = (rng.integers(0, vocab_size, (config.batch_size, config.num_steps)) for _ in "xy")
    losses = {}
    for dtype in ("float32", "float64"):
        engine = create_engine("numpy-reference", config, params, dtype)
        losses[dtype] = [engine.train_step(x, y, 1.0) for _ in range(3)]
        assert engine.get_params()["embedding"].dtype == np.dtype(dtype)
    np.testing.assert_allclose(losses["float32"], losses["float64"], rtol=1e-5)


def test_cli_trains_resumes_evaluates_and_generates_with_the_reference(tiny_dir, tmp_path):
    common = [
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--engine",
        "numpy-reference",
        "--dtype",
        "float64",
        "--epochs",
        "1",
        "--set",
        "dropout=0.3",
    ]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    done = run_cli("train", *common, "--out", str(whole))
    assert done.returncode == 0, done.stderr
    assert "engine numpy-reference" in done.stdout
    first = run_cli("train", *common, "--out", str(parts), "--max-steps", "5")
    assert first.returncode == 0, first.stderr
    resumed = run_cli("train", "--resume", str(parts))
    assert resumed.returncode == 0, resumed.stderr
    assert "engine numpy-reference" in resumed.stdout
    with (
        np.load(whole / "model.npz", allow_pickle=False) as a,
        np.load(parts / "model.npz", allow_pickle=False) as b,
    ):
        for name in a.files:
            if name != "meta":
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    model = str(whole / "model.npz")
    evaluated = run_cli(
        "evaluate",
        "--checkpoint",
        model,
        "--data-dir",
        str(tiny_dir),
        "--engine",
        "numpy-reference",
        "--split",
        "valid",
        "--json",
    )
    assert evaluated.returncode == 0, evaluated.stderr
    fast = run_cli(
        "evaluate",
        "--checkpoint",
        model,
        "--data-dir",
        str(tiny_dir),
        "--engine",
        "numpy",
        "--split",
        "valid",
        "--json",
    )
    assert json.loads(evaluated.stdout)["perplexity"] == pytest.approx(
        json.loads(fast.stdout)["perplexity"], rel=1e-12
    )
    sample = ["generate", "--checkpoint", model, "--prompt", "w1 w2", "--words", "8", "--seed", "3"]
    generated = run_cli(*sample, "--engine", "numpy-reference")
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout == run_cli(*sample, "--engine", "numpy").stdout
    scored = run_cli(
        "score",
        "--checkpoint",
        model,
        "--text",
        "w1 w2 w3",
        "--json",
        "--engine",
        "numpy-reference",
    )
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["log_likelihood"] < 0
