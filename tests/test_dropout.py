"""Dropout, the paper's point: one generator for every engine, applied where the paper says.

The masks (ptb_lstm.dropout) are checked statistically: keep rate within binomial bounds,
kept units scaled by 1 / (1 - p), independent across the three places, time steps, batch
rows and training steps, and reproducible from (seed, step) alone. Every registered engine is
then probed with masks chosen by hand, with expected values derived without the engines: a
zero top mask leaves only the softmax bias, a mask of 2 equals doubling the weights it feeds, a
zero input mask makes the output independent of the words, the recurrent path is never masked,
and evaluation ignores dropout. Finally every engine resumes a dropout run exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptb_lstm import dropout
from ptb_lstm.config import PRESETS
from ptb_lstm.engines import ENGINES, create_engine, engine_class
from ptb_lstm.errors import UserError
from ptb_lstm.params import init_params

from conftest import run_cli, write_corpus

VOCAB = 13
BATCH, STEPS, HIDDEN = 3, 4, 6


def installed(name: str) -> bool:
    try:
        engine_class(name)
    except UserError:  # its optional framework is not installed
        return False
    return True


@pytest.fixture(params=ENGINES)
def engine_name(request):
    if not installed(request.param):
        pytest.skip(f"the {request.param} engine's framework is not installed")
    return request.param


def kept_fraction_bounds(n: int, keep: float, sigmas: float = 5.0) -> tuple[float, float]:
    """The fraction of n Bernoulli(keep) draws lies in this interval but once in ~3.5 million."""
    spread = sigmas * math.sqrt(keep * (1 - keep) / n)
    return keep - spread, keep + spread


# -- the generator ------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.65])
def test_keep_rate_is_within_binomial_bounds_and_kept_units_are_scaled(rate):
    masks = dropout.masks(
        seed=7,
        step=3,
        rate=rate,
        num_layers=2,
        batch_size=20,
        num_steps=35,
        hidden_size=200,
        dtype=np.float64,
    )
    assert len(masks) == 3
    for mask in masks:
        assert mask.shape == (35, 20, 200)
        assert set(np.unique(mask)) <= {0.0, 1.0 / (1.0 - rate)}
        low, high = kept_fraction_bounds(mask.size, 1 - rate)
        assert low <= np.mean(mask > 0) <= high
        # Inverted dropout: the expected activation is unchanged.
        assert abs(mask.mean() - 1.0) <= (high - low) / (1 - rate)


def both_kept_is_independent(a: np.ndarray, b: np.ndarray, keep: float) -> bool:
    """Two indicator arrays are independent draws: both kept about keep**2 of the time."""
    low, high = kept_fraction_bounds(a.size, keep * keep)
    return low <= np.mean((a > 0) & (b > 0)) <= high


def test_masks_are_independent_across_places_time_rows_and_steps():
    keep = 0.5
    kwargs = dict(rate=1 - keep, num_layers=2, batch_size=40, num_steps=50, hidden_size=100)
    step_a = dropout.masks(seed=1, step=10, **kwargs)
    step_b = dropout.masks(seed=1, step=11, **kwargs)
    embedding, between, top = step_a
    # Across the three places.
    assert both_kept_is_independent(embedding, between, keep)
    assert both_kept_is_independent(embedding, top, keep)
    assert both_kept_is_independent(between, top, keep)
    # Across time steps and batch rows within one place.
    assert both_kept_is_independent(embedding[1:], embedding[:-1], keep)
    assert both_kept_is_independent(embedding[:, 1:], embedding[:, :-1], keep)
    assert both_kept_is_independent(embedding[..., 1:], embedding[..., :-1], keep)
    # Across training steps, place by place.
    for a, b in zip(step_a, step_b, strict=True):
        assert both_kept_is_independent(a, b, keep)
    # Across seeds.
    assert both_kept_is_independent(dropout.masks(seed=2, step=10, **kwargs)[0], embedding, keep)


def test_masks_depend_on_seed_and_step_alone_and_not_on_dtype():
    kwargs = dict(rate=0.5, num_layers=2, batch_size=4, num_steps=5, hidden_size=8)
    first = dropout.masks(3, 1000, **kwargs)
    dropout.masks(3, 999, **kwargs)  # draws before do not matter
    again = dropout.masks(3, 1000, dtype=np.float64, **kwargs)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[0].dtype == np.float32 and again[0].dtype == np.float64


def test_no_masks_without_dropout():
    assert dropout.step_masks(PRESETS["small"], step=0) is None
    medium = dropout.step_masks(PRESETS["medium"], step=0)
    assert [m.shape for m in medium] == [(35, 20, 650)] * 3


# -- every engine applies the masks where the paper says, and only when training ---------------


def config(rate=0.5):
    return PRESETS["tiny"].replace(
        hidden_size=HIDDEN,
        batch_size=BATCH,
        num_steps=STEPS,
        num_layers=2,
        init_scale=0.5,
        dropout=rate,
        max_grad_norm=1e9,
    )


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, VOCAB, (BATCH, STEPS)), rng.integers(0, VOCAB, (BATCH, STEPS)))


def params(seed=1):
    return init_params(config(), VOCAB, np.float64, seed=seed)


def masks_of(*values):
    """Masks with one constant value per place: (embedding, between layers, top)."""
    return [np.full((STEPS, BATCH, HIDDEN), value, np.float64) for value in values]


def first_loss(name, weights, masks, inputs=None, state=None, rate=0.5):
    engine = create_engine(name, config(rate), weights, dtype="float64")
    if state is not None:
        engine.set_state(state)
    x, y = batch()
    return engine.train_step(x if inputs is None else inputs, y, 0.0, masks), engine


def test_a_zero_top_mask_leaves_only_the_softmax_bias(engine_name):
    weights = params()
    loss, _ = first_loss(engine_name, weights, masks_of(1, 1, 0))
    # Every position's logits are the bias: the loss is T times the mean over the batch of
    # -log softmax(bias)[target], computed here without any engine.
    bias = weights["softmax_bias"]
    log_probs = bias - (bias.max() + np.log(np.exp(bias - bias.max()).sum()))
    _, targets = batch()
    expected = -log_probs[targets].sum() / BATCH
    assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "place, weight", [(0, "embedding"), (1, "lstm_1_kernel"), (2, "softmax_kernel")]
)
def test_a_mask_of_two_equals_doubling_the_weights_it_feeds(engine_name, place, weight):
    weights = params()
    doubled = {**weights, weight: 2 * weights[weight]}
    values = [1, 1, 1]
    values[place] = 2
    masked, _ = first_loss(engine_name, weights, masks_of(*values))
    reference, _ = first_loss(engine_name, doubled, masks_of(1, 1, 1))
    plain, _ = first_loss(engine_name, weights, masks_of(1, 1, 1))
    assert masked == pytest.approx(reference, rel=1e-12)
    assert abs(masked - plain) > 1e-6  # the mask did something


@pytest.mark.parametrize("values", [(0, 1, 1), (1, 0, 1)])
def test_a_zero_input_mask_makes_the_loss_independent_of_the_words(engine_name, values):
    weights = params()
    other_inputs = (batch(0)[0] + 1) % VOCAB
    same, _ = first_loss(engine_name, weights, masks_of(*values))
    other, _ = first_loss(engine_name, weights, masks_of(*values), inputs=other_inputs)
    assert same == pytest.approx(other, rel=1e-13)
    open_same, _ = first_loss(engine_name, weights, masks_of(1, 1, 1))
    open_other, _ = first_loss(engine_name, weights, masks_of(1, 1, 1), inputs=other_inputs)
    assert abs(open_same - open_other) > 1e-6


def test_the_recurrent_path_is_never_masked(engine_name):
    """With every mask zero, the new state still depends on the carried state through
    h(t-1) -> h(t): no mask sits on the recurrent connection."""
    weights = params()
    rng = np.random.default_rng(5)
    states = [
        [
            (rng.uniform(-1, 1, (BATCH, HIDDEN)), rng.uniform(-1, 1, (BATCH, HIDDEN)))
            for _ in range(2)
        ]
        for _ in range(2)
    ]
    finals = []
    for state in states:
        _, engine = first_loss(engine_name, weights, masks_of(0, 0, 0), state=state)
        finals.append(engine.get_state())
    for (h_a, c_a), (h_b, c_b) in zip(*finals, strict=True):
        assert np.abs(h_a - h_b).max() > 1e-3 and np.abs(c_a - c_b).max() > 1e-3


def test_no_dropout_at_evaluation_sampling_or_scoring(engine_name):
    weights = params()
    x, y = batch()
    results = []
    for rate in (0.0, 0.5, 0.5):
        engine = create_engine(engine_name, config(rate), weights, dtype="float64")
        nll = engine.eval_step(x, y)
        engine.reset_state(BATCH)
        results.append((nll, engine.logits(x)))
    for nll, logits in results[1:]:
        assert nll == results[0][0]
        np.testing.assert_array_equal(logits, results[0][1])


def test_engines_agree_with_dropout_step_by_step(engine_name):
    """Five steps with dropout 0.5 and clipping active, float64: the same parameters as the
    NumPy engine's within 1e-9 (relative to each array's largest entry)."""
    clipped = config().replace(max_grad_norm=0.5)
    weights = params()
    rng = np.random.default_rng(9)
    data = [
        (rng.integers(0, VOCAB, (BATCH, STEPS)), rng.integers(0, VOCAB, (BATCH, STEPS)))
        for _ in range(6)
    ]
    runs = {}
    for name in ("numpy", engine_name):
        engine = create_engine(name, clipped, weights, dtype="float64")
        losses, norms = [], []
        for step, (x, y) in enumerate(data):
            masks = dropout.step_masks(clipped, step, dtype=np.float64)
            losses.append(engine.train_step(x, y, 1.0, masks))
            norms.append(engine.last_grad_norm)
        runs[name] = (np.array(losses), engine.get_params(), norms)
    assert min(runs["numpy"][2]) > clipped.max_grad_norm  # clipping was active every step
    ref_losses, ref_params, _ = runs["numpy"]
    losses, after, _ = runs[engine_name]
    assert np.abs(losses - ref_losses).max() <= 1e-9 * np.abs(ref_losses).max()
    for key, value in ref_params.items():
        assert np.abs(after[key] - value).max() <= 1e-9 * np.abs(value).max(), key


# -- resuming a dropout run is exact with every engine ------------------------------------------


@pytest.fixture(scope="module")
def resume_corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("dropout-resume") / "c", lines=(300, 20, 20))


def saved_params(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k != "meta" and not k.startswith("carried_")}


def test_every_engine_resumes_a_dropout_run_exactly(engine_name, resume_corpus, tmp_path):
    args = [
        "--config",
        "tiny",
        "--engine",
        engine_name,
        "--data-dir",
        str(resume_corpus),
        "--dtype",
        "float64",
        "--epochs",
        "2",
        "--set",
        "dropout=0.5",
        "--checkpoint-every",
        "5",
    ]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    done = run_cli("train", *args, "--out", str(whole))
    assert done.returncode == 0, done.stderr
    first = run_cli("train", *args, "--out", str(parts), "--max-steps", "13")
    assert first.returncode == 0, first.stderr
    second = run_cli("train", "--resume", str(parts))
    assert second.returncode == 0, second.stderr
    a, b = saved_params(whole / "model.npz"), saved_params(parts / "model.npz")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # And dropout changed the run: the same run without it ends elsewhere.
    plain = tmp_path / "plain"
    no_dropout = [*args[:-3], "dropout=0", *args[-2:]]
    assert run_cli("train", *no_dropout, "--out", str(plain)).returncode == 0
    assert not np.array_equal(saved_params(plain / "model.npz")["embedding"], a["embedding"])
