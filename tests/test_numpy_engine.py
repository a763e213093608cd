import subprocess
import sys

import numpy as np
import pytest

from ptb_lstm.config import PRESETS
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines.numpy_engine import NumpyEngine
from ptb_lstm.gradcheck import TOLERANCE, gradcheck
from ptb_lstm.params import init_params

VOCAB = 13


def engine(dtype="float64", **changes):
    config = PRESETS["tiny"].replace(**changes)
    return NumpyEngine(config, init_params(config, VOCAB, np.float64), dtype=dtype)


def batch(seed=0, batch_size=4, num_steps=5):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, VOCAB, (batch_size, num_steps)),
        rng.integers(0, VOCAB, (batch_size, num_steps)),
    )


@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_backpropagation_matches_finite_differences(dropout):
    rows = gradcheck(seed=3, dropout=dropout)
    names = {r.name for r in rows}
    assert {"embedding", "softmax_kernel", "lstm_1_recurrent_kernel", "state_0_c"} <= names
    worst = max(r.error for r in rows)
    assert worst <= TOLERANCE, rows


def test_initial_loss_is_near_uniform_prediction():
    e = engine(init_scale=0.01)
    x, y = batch()
    loss = e.gradients(x, y, e.state).loss
    assert loss == pytest.approx(5 * np.log(VOCAB), rel=1e-2)


def reference_nll(params, inputs, targets, num_layers):
    """-log p of every target [B, T], from zero state, straight from docs/model.md §3: one
    time step at a time, gates i, f, g, o, in float64 with nothing shared with the engine."""

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    batch_size, num_steps = inputs.shape
    hidden = params["embedding"].shape[1]
    h = [np.zeros((batch_size, hidden)) for _ in range(num_layers)]
    c = [np.zeros((batch_size, hidden)) for _ in range(num_layers)]
    nll = np.zeros((batch_size, num_steps))
    for t in range(num_steps):
        x = params["embedding"][inputs[:, t]]
        for layer in range(num_layers):
            z = (
                x @ params[f"lstm_{layer}_kernel"]
                + h[layer] @ params[f"lstm_{layer}_recurrent_kernel"]
                + params[f"lstm_{layer}_bias"]
            )
            i, f, g, o = (z[:, k * hidden : (k + 1) * hidden] for k in range(4))
            c[layer] = sigmoid(f) * c[layer] + sigmoid(i) * np.tanh(g)
            h[layer] = sigmoid(o) * np.tanh(c[layer])
            x = h[layer]
        logits = x @ params["softmax_kernel"] + params["softmax_bias"]
        for b in range(batch_size):
            nll[b, t] = np.log(np.sum(np.exp(logits[b]))) - logits[b, targets[b, t]]
    return nll


def test_loss_is_summed_over_time_and_averaged_over_batch():
    e = engine()
    x, y = batch()
    expected = reference_nll(e.get_params(), x, y, e.config.num_layers)  # [4, 5]
    assert e.gradients(x, y, e.state).loss == pytest.approx(expected.sum(axis=1).mean(), rel=1e-12)
    assert e.eval_step(x, y) == pytest.approx(expected.sum(), rel=1e-12)


def test_sgd_step_is_exactly_clipped_gradient_descent():
    e = engine(max_grad_norm=1e-3)
    x, y = batch()
    before = e.get_params()
    grads = e.gradients(x, y, e.state)
    full = dict(grads.dense, embedding=grads.dense_embedding(VOCAB))
    norm = grads.global_norm()
    assert norm > 1e-3
    e.train_step(x, y, learning_rate=0.7)
    after = e.get_params()
    for name, grad in full.items():
        np.testing.assert_allclose(
            after[name], before[name] - 0.7 * 1e-3 / norm * grad, rtol=0, atol=1e-15
        )
    change = np.sqrt(sum(np.sum((after[n] - before[n]) ** 2) for n in after))
    assert change == pytest.approx(0.7 * 1e-3, rel=1e-9)


def test_unused_embedding_rows_are_untouched():
    e = engine()
    x, y = batch()
    x[:] = x % 5  # only ids 0..4 are inputs
    before = e.get_params()["embedding"]
    e.train_step(x, y, 1.0)
    after = e.get_params()["embedding"]
    np.testing.assert_array_equal(after[5:], before[5:])
    assert not np.array_equal(after[:5], before[:5])


def test_state_is_carried_between_steps():
    x, y = batch(num_steps=10)
    whole = engine(num_steps=10).eval_step(x, y)
    two = engine(num_steps=5)
    first = two.eval_step(x[:, :5], y[:, :5])
    second_carried = two.eval_step(x[:, 5:], y[:, 5:])
    assert first + second_carried == pytest.approx(whole, rel=1e-12)
    two.reset_state(4)
    second_from_zeros = two.eval_step(x[:, 5:], y[:, 5:])
    assert second_from_zeros != pytest.approx(second_carried, rel=1e-6)


def test_training_lowers_the_loss_on_a_repeated_batch():
    e = engine()
    x, y = batch()
    losses = []
    for _ in range(30):
        e.reset_state(4)
        losses.append(e.train_step(x, y, 1.0))
    assert losses[-1] < 0.8 * losses[0]


def test_float32_and_float64_agree():
    x, y = batch()
    e32, e64 = engine("float32"), engine("float64")
    for _ in range(3):
        l32, l64 = e32.train_step(x, y, 1.0), e64.train_step(x, y, 1.0)
        assert l32 == pytest.approx(l64, rel=1e-5)
    assert e32.get_params()["embedding"].dtype == np.float32


def test_dropout_changes_training_but_not_evaluation():
    x, y = batch()
    plain, dropped = engine(), engine(dropout=0.5)
    assert plain.eval_step(x, y) == dropped.eval_step(x, y)
    plain.reset_state(4)
    dropped.reset_state(4)
    masks = step_masks(dropped.config, 0, dtype=np.float32)
    assert plain.train_step(x, y, 1.0) != dropped.train_step(x, y, 1.0, masks)


def test_core_package_imports_no_other_numerical_framework():
    code = (
        "import sys, ptb_lstm.cli, ptb_lstm.train, ptb_lstm.engines.numpy_engine, "
        "ptb_lstm.gradcheck, ptb_lstm.checkpoint; "
        "bad = [m for m in ('tensorflow', 'torch', 'jax', 'scipy') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_softmax_nll_and_gradient_survive_extreme_logits():
    """Rows whose exp-sum would overflow or vanish in float32 without their maximum
    subtracted: every row must match a float64 reference."""
    from ptb_lstm.engines.numpy_engine import _softmax_nll_in_place

    rng = np.random.default_rng(7)
    n, h, v = 96, 8, 50
    top = np.concatenate([rng.standard_normal((n, h)), np.ones((n, 1))], 1)
    weights = rng.standard_normal((h + 1, v))
    top[5] *= 40.0  # logits in the hundreds: exp overflows float32
    top[70, :h] *= 40.0
    top[40] = 0.0
    top[40, h] = 1.0
    top = top.astype(np.float32)
    weights = weights.astype(np.float32)
    weights[-1, :] = -100.0  # every logit of row 40 is -100: exp underflows towards zero
    weights[-1, 3] = -95.0
    targets = rng.integers(0, v, n)
    logits64 = top.astype(np.float64) @ weights.astype(np.float64)
    shifted = logits64 - logits64.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected_nll = -log_probs[np.arange(n), targets].sum()
    expected_grad = 0.5 * np.exp(log_probs)
    expected_grad[np.arange(n), targets] -= 0.5

    logits = top @ weights
    nll = _softmax_nll_in_place(logits, targets, 0.5)
    assert np.isfinite(logits).all()
    assert nll == pytest.approx(expected_nll, rel=1e-5)
    np.testing.assert_allclose(logits, expected_grad, atol=1e-5)
    assert _softmax_nll_in_place(top @ weights, targets, None) == pytest.approx(
        expected_nll, rel=1e-5
    )


def test_the_global_norm_is_accurate_in_float32():
    # 2^24 entries of float32(0.1) and a few embedding rows: the exact sum of squares, worked
    # out in float64, against the engine's. A float32 dot product is 1e-4 off or worse here.
    from ptb_lstm.engines.numpy_engine import Gradients

    value = np.float32(0.1)
    dense = {"kernel": np.full(1 << 24, value, np.float32)}
    rows = np.full((3, 700), -value, np.float32)
    grads = Gradients(
        loss=0.0,
        dense=dense,
        embedding_rows=np.arange(3),
        embedding_grad=rows,
        state_grad=[],
        final_state=[],
    )
    exact = np.sqrt(((1 << 24) + 3 * 700) * float(value) ** 2)
    assert grads.global_norm() == pytest.approx(exact, rel=1e-6)


def test_gradients_a_caller_keeps_are_not_overwritten_by_the_next_training_step():
    # The training step writes its gradients into arrays the engine keeps; gradients()
    # without reuse returns arrays of the caller's own.
    e = engine()
    x, y = batch(seed=1)
    state = [(np.zeros((4, e.hidden_size)), np.zeros((4, e.hidden_size)))] * e.num_layers
    kept = e.gradients(x, y, state).by_name()
    copies = {name: value.copy() for name, value in kept.items()}
    e.train_step(*batch(seed=2), learning_rate=1.0)
    e.train_step(*batch(seed=3), learning_rate=1.0)
    for name, value in kept.items():
        np.testing.assert_array_equal(value, copies[name])
